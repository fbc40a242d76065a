// The producer and operator side: enqueue (one job or many in one call), info, failures.
import { randomUUID } from 'node:crypto';
import { keys as keyBuilder, assertQueueName, DEFAULT_NAMESPACE } from './keys.js';
import { scripts } from './scripts.js';
import { jobPayloadError, InvalidPayloadError } from './validate.js';
import { connect, stringifyJson, DEFAULT_REDIS_URL } from './util.js';
import * as delayed from './delayed.js';
import * as schedule from './schedule.js';
import { Router } from './routing.js';
import { durableCall, DEFAULT_WAIT_TIMEOUT_MS } from './durable.js';

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
   * @param {number} [options.waitReplicas] durable enqueue (protocol.md 15.4): succeed only once
   *   this many replicas have the job (WAIT), else throw NotReplicatedError; default 0 (off)
   * @param {number} [options.waitTimeoutMs] how long WAIT waits; default 1000
   */
  constructor({ redisUrl = DEFAULT_REDIS_URL, namespace = DEFAULT_NAMESPACE, redis, waitReplicas = 0,
    waitTimeoutMs = DEFAULT_WAIT_TIMEOUT_MS } = {}) {
    this.k = keyBuilder(namespace);
    this.namespace = namespace;
    this.scripts = scripts();
    this.ownsRedis = !redis;
    this.redis = redis ?? connect(redisUrl, { waitForever: false });
    this.waitReplicas = waitReplicas;
    this.waitTimeoutMs = waitTimeoutMs;
    this.router = new Router(this.redis, namespace);
  }

  /** The key builder of the namespace `queue` is routed to (protocol.md 15.2). */
  async keysFor(queue) {
    const ns = await this.router.namespaceFor(queue);
    return ns === this.namespace ? this.k : keyBuilder(ns);
  }

  /** This home namespace and every group namespace its routing table names. */
  async namespaces() {
    return this.router.namespaces();
  }

  /** Runs an enqueueing script; durable: WAIT for replicas on the same connection. */
  async write(name, keys, args) {
    if (!this.waitReplicas) return this.scripts.call(this.redis, name, keys, args);
    return durableCall(this.redis, this.scripts.get(name), keys, args, this.waitReplicas, this.waitTimeoutMs);
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
    const k = await this.keysFor(queue);
    const keys = [k.queues(), k.queue(queue), k.wake(queue), k.wakeNewQueue()];
    for (let i = 0; i < built.length; i += MAX_BULK) {
      const chunk = built.slice(i, i + MAX_BULK).map((b) => b.payload);
      await this.write('enqueue', keys, [queue, ...chunk]);
    }
    return built.map((b) => b.id);
  }

  // ---- protocol 1.1: delayed jobs, retries, schedules (protocol.md section 14) -----------

  /**
   * Enqueues a job to run at `atMs` (ms since the epoch, or a Date); returns its id. A time not
   * later than now enqueues it at once (protocol.md 14.2). `options`: id, extra (e.g. {retry}).
   */
  async enqueueAt(queue, className, args, at, options = {}) {
    assertQueueName(queue);
    const atMs = at instanceof Date ? at.getTime() : Number(at);
    if (!Number.isSafeInteger(atMs) || atMs < 0) throw new TypeError(`enqueueAt needs a time in ms since the epoch, got ${at}`);
    const now = Date.now();
    if (atMs <= now) return this.enqueue(queue, className, args, options);
    const { id, payload } = buildPayload(className, args ?? [], { id: options.id ?? newJobId(), enqueuedAt: now, extra: options.extra });
    const item = delayed.delayedItem(payload, queue, atMs);
    const ts = delayed.bucketOf(atMs);
    const k = await this.keysFor(queue); // the queue's namespace holds its delayed jobs (15.2)
    await this.write('delay', [k.delayedSchedule(), k.delayedBucket(ts), k.delayedTimestamps(item), k.wakeSchedule()],
      [String(ts), item]);
    return id;
  }

  /** Enqueues a job to run `ms` milliseconds from now; returns its id. */
  async enqueueIn(queue, className, args, ms, options = {}) {
    if (!Number.isFinite(Number(ms)) || Number(ms) < 0) throw new TypeError(`enqueueIn needs a delay in ms >= 0, got ${ms}`);
    return this.enqueueAt(queue, className, args, Date.now() + Math.ceil(Number(ms)), options);
  }

  /** Delayed jobs by time: [{ts, item, name, queue}] (name: the id, else sha1:<hex>). */
  async scheduled() {
    return delayed.listDelayed(this.redis, this.k);
  }

  /** Removes the delayed job named `name` (mode "enqueue": runs it now); false when not found. */
  async removeScheduled(name, mode = 'remove') {
    for (const entry of await this.scheduled()) {
      if (entry.name !== name) continue;
      if (Number(await delayed.unscheduleDelayed(this.redis, this.k, this.scripts, entry, mode)) === 1) return true;
    }
    return false;
  }

  /** Waiting retries by due time: [{dueMs, member, queue, payload, name}]. */
  async retrying() {
    return delayed.listRetrying(this.redis, this.k);
  }

  /** Removes the waiting retry of job `name` (mode "enqueue": runs it now); false when not found. */
  async removeRetrying(name, mode = 'remove') {
    for (const entry of await this.retrying()) {
      if (entry.name !== name) continue;
      if (Number(await delayed.unscheduleRetry(this.redis, this.k, this.scripts, entry, mode)) === 1) return true;
    }
    return false;
  }

  /** Creates or replaces schedule `name` (schemas/schedule.schema.json); returns its next fire time. */
  async setSchedule(name, definition) {
    assertQueueName(name); // schedule names follow the queue-name rules
    return schedule.setSchedule(this.redis, this.k, name, definition);
  }

  /** Every schedule with its next fire time and counters. */
  async schedules() {
    return schedule.listSchedules(this.redis, this.k);
  }

  /** Removes schedule `name`; true when it existed. */
  async removeSchedule(name) {
    assertQueueName(name);
    return schedule.removeSchedule(this.redis, this.k, name);
  }

  /** Enqueues schedule `name`'s job now (a new id, `schedule` = the name); the schedule is unchanged. */
  async runScheduleNow(name) {
    assertQueueName(name);
    const raw = await this.redis.hget(this.k.schedule(name), 'definition');
    if (raw === null) throw new Error(`no schedule ${JSON.stringify(name)}`);
    const def = schedule.validateDefinition(schedule.parseDefinition(raw));
    const extra = { schedule: name };
    if (def.retry !== undefined) extra.retry = def.retry;
    return this.enqueue(def.queue, def.class, def.args ?? [], { extra });
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
