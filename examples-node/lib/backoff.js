// Retry policies and the retry delay of protocol.md section 14.4, the same in every language
// (conformance/vectors/v1/retry-delays.json pins them). The "random" part is FNV-1a-32 of the
// job id and attempt, not a random generator, so Python, Node and C agree to the millisecond.
import Ajv2020 from 'ajv/dist/2020.js';
import { readSpecJson } from './spec.js';

/** protocol.md 14.4: the value of every member a policy object leaves out. */
export const POLICY_DEFAULTS = Object.freeze({
  max_attempts: 5, backoff: 'exponential', delay_ms: 1000, factor: 2, max_delay_ms: 3600000, jitter: 0.5,
});

/** A policy that never retries (`false`, and what a worker uses without --default-retry). */
export const NEVER = Object.freeze({ ...POLICY_DEFAULTS, max_attempts: 1 });

let policyValidator;

/** job.schema.json's $defs/retry_policy: the one definition of a valid policy. */
function isPolicy(value) {
  if (!policyValidator) {
    const job = readSpecJson('schemas', 'job.schema.json');
    const ajv = new Ajv2020({ allErrors: false, strict: false });
    policyValidator = ajv.compile({ $ref: '#/$defs/retry_policy', $defs: job.$defs });
  }
  return policyValidator(value);
}

/** A full policy from a valid `retry` value (false or an object); unknown members are ignored. */
function fill(value) {
  if (value === false) return NEVER;
  const out = { ...POLICY_DEFAULTS };
  for (const k of Object.keys(POLICY_DEFAULTS)) if (value[k] !== undefined) out[k] = value[k];
  return Object.freeze(out);
}

/**
 * The policy a payload's `retry` member names, or null when it names none (absent, or a value of
 * another producer's making): the worker's default applies then.
 */
export function policyFromMember(value) {
  if (value === undefined || !isPolicy(value)) return null;
  return fill(value);
}

/** The --default-retry option (JSON text or a decoded value); throws a TypeError when invalid. */
export function parseDefaultPolicy(text) {
  let value = text;
  if (typeof text === 'string') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new TypeError(`--default-retry is not JSON: ${err.message}`, { cause: err });
    }
  }
  if (!isPolicy(value)) {
    throw new TypeError(`--default-retry is not a retry policy (false or an object, protocol.md 14.4): ${JSON.stringify(text)}`);
  }
  return fill(value);
}

/** 32-bit FNV-1a of `bytes`: offset basis 2166136261, prime 16777619, modulo 2^32. */
export function fnv1a32(bytes) {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

/** The delay in ms after failed attempt `attempt` (1-based) of job `jobId` ("" without an id). */
export function retryDelayMs(policy, jobId, attempt) {
  let raw = policy.delay_ms;
  if (policy.backoff === 'exponential') {
    for (let i = 0; i < attempt - 1; i++) {
      raw *= policy.factor;
      if (raw >= policy.max_delay_ms) break;
    }
  }
  raw = Math.min(raw, policy.max_delay_ms);
  const base = Math.floor(raw);
  const h = fnv1a32(Buffer.from(`${jobId}:${attempt}`, 'utf8'));
  return base - Math.floor(((base * policy.jitter) * h) / 4294967296);
}

/** True when another attempt follows failed attempt `attempt` under `policy`. */
export function retries(policy, attempt) {
  return attempt < policy.max_attempts;
}
