// Recurring schedules (protocol.md section 14.5): definitions, what a check does with a due
// schedule, the id and payload of a fire, and the client's set / list / remove / run-now.
// conformance/vectors/v1/schedule-next.json pins the next-time rule and the firing rule.
import { createHash } from 'node:crypto';
import Ajv2020 from 'ajv/dist/2020.js';
import { readSpecJson } from './spec.js';
import { Cron, CronError, nextFireMs } from './cron.js';
import { parseJson, stringifyJson } from './util.js';

export { nextFireMs };
export const DEFAULT_GRACE_MS = 60000; // a fire more than this late is missed
export const MAX_FIRES_PER_CHECK = 1000; // due fire times looked at per schedule per check

export class InvalidScheduleError extends Error {
  constructor(message) {
    super(message);
    this.name = 'jobwire.InvalidSchedule';
  }
}

let validator;

/** schedule.schema.json, with job.schema.json for its $ref to the retry policy. */
function schemaCheck(definition) {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: false, strict: false });
    ajv.addSchema(readSpecJson('schemas', 'job.schema.json'));
    validator = ajv.compile(readSpecJson('schemas', 'schedule.schema.json'));
  }
  if (validator(definition)) return null;
  return validator.errors.map((e) => `${e.instancePath || 'definition'} ${e.message}`).join('; ');
}

/** The definition when it is usable; else throws InvalidScheduleError saying why (schema, then cron). */
export function validateDefinition(definition) {
  if (definition === null || typeof definition !== 'object' || Array.isArray(definition)) {
    throw new InvalidScheduleError('a schedule definition is a JSON object');
  }
  const error = schemaCheck(definition);
  if (error) throw new InvalidScheduleError(`invalid schedule: ${error}`);
  if (definition.cron !== undefined) {
    let never;
    try {
      never = Cron.parse(definition.cron).nextAfter(0) === null;
    } catch (err) {
      if (err instanceof CronError) throw new InvalidScheduleError(`invalid schedule: cron: ${err.message}`);
      throw err;
    }
    if (never) throw new InvalidScheduleError(`invalid schedule: cron: ${JSON.stringify(definition.cron)} never fires`);
  }
  return definition;
}

/**
 * What a check at `nowMs` does with a schedule due at `nextMs`: of the due fire times, the
 * latest is fired when it is at most misfire_grace_ms late; every other one is missed.
 * Returns {fireMs|null, missed, lastMissedMs|null, nextMs|null (never fires again)}.
 */
export function decide(definition, nextMs, nowMs) {
  const grace = definition.misfire_grace_ms ?? DEFAULT_GRACE_MS;
  const due = [];
  let f = nextMs;
  while (f !== null && f <= nowMs && due.length < MAX_FIRES_PER_CHECK) {
    due.push(f);
    f = nextFireMs(definition, f);
  }
  if (due.length === 0) return { fireMs: null, missed: 0, lastMissedMs: null, nextMs };
  const latest = due[due.length - 1];
  if (nowMs - latest <= grace) {
    return { fireMs: latest, missed: due.length - 1, lastMissedMs: due.length > 1 ? due[due.length - 2] : null, nextMs: f };
  }
  return { fireMs: null, missed: due.length, lastMissedMs: latest, nextMs: f };
}

/** The id of the job a fire enqueues: the same for the same fire in every language. */
export function fireJobId(name, fireMs) {
  return createHash('sha256').update(Buffer.from(`jobwire-schedule\0${name}\0${fireMs}`, 'utf8')).digest('hex').slice(0, 32);
}

/** The payload of one fire: class, args, id, enqueued_at, schedule, scheduled_for_ms, retry. */
export function firePayload(name, definition, fireMs, nowMs = Date.now()) {
  const doc = {
    class: definition.class, args: definition.args ?? [], id: fireJobId(name, fireMs), enqueued_at: nowMs,
    schedule: name, scheduled_for_ms: fireMs,
  };
  if (definition.retry !== undefined) doc.retry = definition.retry;
  return stringifyJson(doc);
}

/** Parses a stored definition's bytes (lossless: big integers in args round-trip). */
export function parseDefinition(text) {
  return parseJson(text);
}

// ---- client side ----------------------------------------------------------------------

/** Sets (creates or replaces) schedule `name`; returns its next fire time (ms). */
export async function setSchedule(redis, k, name, definition, nowMs = Date.now()) {
  validateDefinition(definition);
  const next = nextFireMs(definition, nowMs);
  const key = k.schedule(name); // the name follows the queue-name rules (checked by the caller)
  await redis.multi()
    .hset(key, 'definition', stringifyJson(definition))
    .hdel(key, 'error', 'error_ms')
    .zadd(k.schedules(), next, name)
    .lpush(k.wakeSchedule(), '1')
    .ltrim(k.wakeSchedule(), 0, 0)
    .exec();
  return next;
}

/** Removes schedule `name`; true when it existed. */
export async function removeSchedule(redis, k, name) {
  const res = await redis.multi().zrem(k.schedules(), name).del(k.schedule(name)).exec();
  return res[0][1] === 1 || res[1][1] === 1;
}

/** Every schedule: {name, nextMs (Infinity: broken), definition (text), fields of its hash}. */
export async function listSchedules(redis, k) {
  const flat = await redis.zrange(k.schedules(), 0, -1, 'WITHSCORES');
  const out = [];
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i];
    const hash = await redis.hgetall(k.schedule(name));
    out.push({ name, nextMs: Number(flat[i + 1]), ...hash });
  }
  return out;
}
