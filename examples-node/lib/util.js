// Small shared helpers: lossless JSON, Resque time formats, Redis connections.
import { parse as losslessParse, isInteger, isLosslessNumber } from 'lossless-json';
import Redis from 'ioredis';
import { isClusterUrl, clusterConnect } from './cluster.js';
import { DEFAULTS } from './options.js';
import { parseRedisUrl } from './redis-url.js';

// ---- JSON -------------------------------------------------------------------------------

// Integers that a double cannot hold exactly become BigInt, the integer -0 becomes 0; every
// other number a Number (a float -0.0 stays -0).
function parseNumber(text) {
  if (isInteger(text)) {
    const n = Number(text);
    if (n === 0) return 0;
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  return Number(text);
}

// A run of 16 digits is the shortest text that can hold an integer beyond 2^53, and "-0" the
// start of any negative zero; payloads with neither are parsed by the (much faster) native
// parser with the same result.
const NEEDS_LOSSLESS = /\d{16}|-0(?!\d)/;

/**
 * Parses JSON text; integers beyond Number.MAX_SAFE_INTEGER become BigInt so that they
 * round-trip exactly through stringifyJson.
 */
export function parseJson(text) {
  if (!NEEDS_LOSSLESS.test(text)) return JSON.parse(text);
  return losslessParse(text, null, parseNumber);
}

/** True when parseJson(text) must take the slow, lossless path. */
export function needsLosslessParse(text) {
  return NEEDS_LOSSLESS.test(text);
}

/**
 * Compact JSON like JSON.stringify, except that BigInt values are written as plain integers and
 * -0 as -0.0 (so that the double, sign included, round-trips).
 */
export function stringifyJson(value) {
  const out = serialise(value);
  return out === undefined ? undefined : out;
}

function serialise(v) {
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) return 'null';
      return Object.is(v, -0) ? '-0.0' : String(v);
    case 'bigint':
      return v.toString();
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return 'null';
      if (typeof v.toJSON === 'function' && !isLosslessNumber(v)) return serialise(v.toJSON());
      if (isLosslessNumber(v)) return v.toString();
      if (Array.isArray(v)) {
        return `[${v.map((x) => serialise(x) ?? 'null').join(',')}]`;
      }
      const parts = [];
      for (const k of Object.keys(v)) {
        const s = serialise(v[k]);
        if (s !== undefined) parts.push(`${JSON.stringify(k)}:${s}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      return undefined; // undefined, functions, symbols: left out, as JSON.stringify does
  }
}

// ---- times ------------------------------------------------------------------------------

const pad = (n, w = 2) => String(n).padStart(w, '0');

function parts(d) {
  return {
    Y: pad(d.getUTCFullYear(), 4), m: pad(d.getUTCMonth() + 1), d: pad(d.getUTCDate()),
    H: pad(d.getUTCHours()), M: pad(d.getUTCMinutes()), S: pad(d.getUTCSeconds()),
  };
}

/** "%Y/%m/%d %H:%M:%S UTC": failure records' failed_at. */
export function failedAt(date = new Date()) {
  const p = parts(date);
  return `${p.Y}/${p.m}/${p.d} ${p.H}:${p.M}:${p.S} UTC`;
}

/** "%Y-%m-%dT%H:%M:%SZ": working-on records' run_at. */
export function runAt(date = new Date()) {
  const p = parts(date);
  return `${p.Y}-${p.m}-${p.d}T${p.H}:${p.M}:${p.S}Z`;
}

/** "%Y-%m-%d %H:%M:%S +0000": <ns>:worker:<id>:started. */
export function startedAt(date = new Date()) {
  const p = parts(date);
  return `${p.Y}-${p.m}-${p.d} ${p.H}:${p.M}:${p.S} +0000`;
}

/** "yyyy-mm-dd", the UTC day naming <ns>:jobwire:minutes:<day>. */
export function utcDay(date = new Date()) {
  const p = parts(date);
  return `${p.Y}-${p.m}-${p.d}`;
}

// ---- Redis ------------------------------------------------------------------------------

export const DEFAULT_REDIS_URL = DEFAULTS.redisUrl; // spec/options.json

/** Reconnect backoff of protocol.md 7.7: 100 ms doubling to 5000 ms. */
export function backoffMs(attempt) {
  return Math.min(100 * 2 ** Math.max(0, attempt - 1), 5000);
}

/**
 * An ioredis connection that reconnects forever with the protocol's backoff. Commands issued
 * while disconnected wait for the connection (maxRetriesPerRequest: null); commands that were
 * sent but not answered when the connection dropped fail instead of being sent again
 * (autoResendUnfulfilledCommands: false), so a script never runs twice behind our back.
 */
/** The code of the error for a command whose reply the connection lost (see connect()). */
export const REPLY_LOST = 'JOBWIRE_REPLY_LOST';

export function connect(url = DEFAULT_REDIS_URL, { onError, waitForever = true } = {}) {
  parseRedisUrl(url); // InvalidRedisUrl (password hidden) before ioredis sees it
  if (isClusterUrl(url)) {
    const cluster = clusterConnect(url, { retryStrategy: backoffMs, maxRetriesPerRequest: waitForever ? null : 3 });
    cluster.on('error', onError ?? (() => {}));
    return cluster;
  }
  const redis = new Redis(url, {
    retryStrategy: (times) => backoffMs(times),
    // A worker waits for Redis however long it takes; a client (CLI, application) gives up
    // after a few reconnection attempts and sees the error.
    maxRetriesPerRequest: waitForever ? null : 3,
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: true,
  });
  redis.on('error', onError ?? (() => {}));
  // ioredis 5 with autoResendUnfulfilledCommands: false drops the commands that were sent but
  // not answered when the connection closed without ever settling their promises (a BLPOP or
  // EVALSHA would hang forever). Reject them, so the caller learns that the outcome is unknown.
  redis.on('reconnecting', () => {
    const unanswered = redis.prevCommandQueue;
    if (!unanswered) return;
    redis.prevCommandQueue = null;
    while (unanswered.length > 0) {
      const err = new Error('connection to Redis lost before the reply');
      err.code = REPLY_LOST; // the command may or may not have run
      unanswered.shift().command.reject(err);
    }
  });
  return redis;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
