// The producer and operator side: enqueue (one job or many in one call), info, failures.
import { randomUUID } from 'node:crypto';
import { keys as keyBuilder, assertQueueName, DEFAULT_NAMESPACE } from './keys.js';
import { scripts } from './scripts.js';
import { jobPayloadError, InvalidPayloadError } from './validate.js';
import { connect, stringifyJson, DEFAULT_REDIS_URL } from './util.js';

export const MAX_BULK = 1000; // payloads per enqueue.lua call (protocol.md section 11)

/** A new job id: 32 lowercase hex characters from a random UUID. */
export function newJobId() {
  return randomUUID().replace(/-/g, '');
}

/**
 * Builds and validates one payload: {"class","args","id","enqueued_at"} in that order, plus
 * `extra` fields after them. Throws InvalidPayloadError when it fails job.schema.json.
 */
export function buildPayload(className, args = [], { id = newJobId(), enqueuedAt = Date.now(), extra } = {}) {
  const doc = { class: className, args, id, enqueued_at: enqueuedAt };
  if (extra) {
    for (const [k, v] of Object.entries(extra)) if (!(k in doc)) doc[k] = v;
  }
  const error = jobPayloadError(doc);
  if (error) throw new InvalidPayloadError(`invalid job payload: ${error}`);
  return { id, payload: stringifyJson(doc) };
}

export class Client {
  /**
   * @param {object} [options]
   * @param {string} [options.redisUrl]  default redis://127.0.0.1:6379/0
   * @param {string} [options.namespace] default "resque"
   * @param {import('ioredis').Redis} [options.redis] an existing connection to use (not closed by close())
   */
  constructor({ redisUrl = DEFAULT_REDIS_URL, namespace = DEFAULT_NAMESPACE, redis } = {}) {
    this.k = keyBuilder(namespace);
    this.namespace = namespace;
    this.scripts = scripts();
    this.ownsRedis = !redis;
    this.redis = redis ?? connect(redisUrl, { waitForever: false });
  }

  async close() {
    if (this.ownsRedis) await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** Enqueues one job; returns its id. Nothing is pushed when the payload is invalid. */
  async enqueue(queue, className, args = [], options = {}) {
    const [id] = await this.enqueueMany(queue, [{ class: className, args, ...options }]);
    return id;
  }

  /**
   * Enqueues several jobs onto one queue, at most 1000 per enqueue.lua call; returns their ids.
   * `jobs` are {class, args?, id?, extra?}. Every payload is validated before anything is pushed.
   */
  async enqueueMany(queue, jobs) {
    assertQueueName(queue);
    if (!Array.isArray(jobs)) throw new TypeError('jobs must be an array');
    const now = Date.now();
    const built = jobs.map((j) =>
      buildPayload(j.class, j.args ?? [], { id: j.id ?? newJobId(), enqueuedAt: j.enqueuedAt ?? now, extra: j.extra }));
    const k = this.k;
    const keys = [k.queues(), k.queue(queue), k.wake(queue), k.wakeNewQueue()];
    for (let i = 0; i < built.length; i += MAX_BULK) {
      const chunk = built.slice(i, i + MAX_BULK).map((b) => b.payload);
      await this.scripts.call(this.redis, 'enqueue', keys, [queue, ...chunk]);
    }
    return built.map((b) => b.id);
  }

  /** Counters as protocol.md 8.8 "info": queues and their sizes, processed, failed, workers. */
  async info() {
    const k = this.k;
    const queues = (await this.redis.smembers(k.queues())).sort(compareUtf8);
    const p = this.redis.pipeline();
    for (const q of queues) p.llen(k.queue(q));
    p.get(k.statProcessed());
    p.get(k.statFailed());
    p.scard(k.workers());
    p.llen(k.failed());
    const res = await p.exec();
    for (const [err] of res) if (err) throw err;
    const values = res.map(([, v]) => v);
    const sizes = {};
    queues.forEach((q, i) => { sizes[q] = Number(values[i]); });
    const rest = values.slice(queues.length);
    return {
      queues: sizes,
      pending: Object.values(sizes).reduce((a, b) => a + b, 0),
      processed: Number(rest[0] ?? 0),
      failed: Number(rest[1] ?? 0),
      workers: Number(rest[2]),
      failures: Number(rest[3]),
    };
  }

  /** Ids in <ns>:workers. */
  async workers() {
    return (await this.redis.smembers(this.k.workers())).sort(compareUtf8);
  }

  /** Length of <ns>:queue:<q>. */
  async queueSize(queue) {
    return this.redis.llen(this.k.queue(queue));
  }

  /**
   * Failure records start..stop (LRANGE indexes), parsed and normalised; tolerates the records
   * Ruby Resque and node-resque write (JS date strings, worker without queues, null backtrace).
   * Each has `raw`, the record's exact text, for LREM / failed_retry.lua.
   */
  async failures(start = 0, stop = -1) {
    const raws = await this.redis.lrange(this.k.failed(), start, stop);
    return raws.map(parseFailure);
  }

  /** Number of failure records. */
  async failureCount() {
    return this.redis.llen(this.k.failed());
  }
}

/** Normalises one failure record (jobwire, Ruby Resque or node-resque). */
export function parseFailure(raw) {
  let doc;
  try {
    doc = JSON.parse(raw);
  } catch {
    doc = null;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return { raw, valid: false, failedAt: null, payload: null, exception: null, error: null, backtrace: [], worker: null, queue: null };
  }
  const str = (v) => (v === undefined || v === null ? null : String(v));
  return {
    raw,
    valid: true,
    failedAt: str(doc.failed_at),
    payload: doc.payload ?? null,
    exception: str(doc.exception),
    error: str(doc.error),
    backtrace: Array.isArray(doc.backtrace) ? doc.backtrace.map(String) : [],
    worker: str(doc.worker),
    queue: str(doc.queue),
    retriedAt: str(doc.retried_at),
  };
}

/** Orders strings by their UTF-8 bytes (= by code point). */
export function compareUtf8(a, b) {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
