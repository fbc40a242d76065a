// The jobwire key builder: the only place in this package that builds Redis key names.
// The templates come from spec/keys.json, their one source; test/keys.test.js runs the shared
// key vectors (conformance/vectors/v1/keys.json) through it.
import { readSpecJson } from './spec.js';
import { DEFAULTS } from './options.js';

export const DEFAULT_NAMESPACE = DEFAULTS.namespace;

/** The templates of spec/keys.json, by name. */
export const TEMPLATES = Object.freeze({ ...readSpecJson('keys.json').templates });

// key-layout.md "Queue names": 1 to 255 bytes of UTF-8 without ':', '*', ',', C0 controls and
// space, DEL, C1 controls and NBSP, the other Unicode White_Space characters, U+FEFF.
// eslint-disable-next-line no-control-regex
const BAD_QUEUE_CHARS = /[:*,\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/u;

/** True when `name` is a valid queue name (key-layout.md, "Queue names"). */
export function isValidQueueName(name) {
  if (typeof name !== 'string' || name.length === 0) return false;
  if (Buffer.byteLength(name, 'utf8') > 255) return false;
  if (/[\ud800-\udfff]/u.test(name)) return false; // lone surrogates are not UTF-8
  return !BAD_QUEUE_CHARS.test(name);
}

/** Throws a TypeError unless `name` is a valid queue name. */
export function assertQueueName(name) {
  if (!isValidQueueName(name)) {
    throw new TypeError(`invalid queue name ${JSON.stringify(name)}: 1-255 bytes of UTF-8 ` +
      'without ":", "*", ",", whitespace or control characters');
  }
  return name;
}

/** Fills template `name` with params {ns, queue, worker_id, day, ts, item, name}. */
export function buildKey(name, params = {}) {
  const template = TEMPLATES[name];
  if (template === undefined) throw new Error(`unknown key template ${JSON.stringify(name)}`);
  return template.replace(/\{(ns|queue|worker_id|day|ts|item|name)\}/g, (_, p) => {
    const v = params[p];
    if (typeof v !== 'string' || v === '') throw new Error(`key ${name} needs a non-empty ${p}`);
    return v;
  });
}

/** Key builder bound to one namespace: keys('resque').queue('high') === 'resque:queue:high'. */
export function keys(ns = DEFAULT_NAMESPACE) {
  if (typeof ns !== 'string' || ns === '') throw new Error('namespace must be a non-empty string');
  const p = { ns };
  return Object.freeze({
    ns,
    queues: () => buildKey('queues', p),
    queue: (queue) => buildKey('queue', { ns, queue }),
    workers: () => buildKey('workers', p),
    workerRecord: (workerId) => buildKey('worker_record', { ns, worker_id: workerId }),
    workerStarted: (workerId) => buildKey('worker_started', { ns, worker_id: workerId }),
    heartbeats: () => buildKey('heartbeats', p),
    statProcessed: () => buildKey('stat_processed', p),
    statFailed: () => buildKey('stat_failed', p),
    statProcessedWorker: (workerId) => buildKey('stat_processed_worker', { ns, worker_id: workerId }),
    statFailedWorker: (workerId) => buildKey('stat_failed_worker', { ns, worker_id: workerId }),
    failed: () => buildKey('failed', p),
    pauseAll: () => buildKey('pause_all', p),
    meta: () => buildKey('meta', p),
    leases: () => buildKey('leases', p),
    inflight: (workerId) => buildKey('inflight', { ns, worker_id: workerId }),
    deaths: () => buildKey('deaths', p),
    workerInfo: (workerId) => buildKey('worker_info', { ns, worker_id: workerId }),
    control: (workerId) => buildKey('control', { ns, worker_id: workerId }),
    wake: (queue) => buildKey('wake', { ns, queue }),
    wakeNewQueue: () => buildKey('wake_new_queue', p),
    minutes: (day) => buildKey('minutes', { ns, day }),
    conformanceEcho: () => buildKey('conformance_echo', p),
    // protocol 1.1 (section 14)
    prefix: `${ns}:`,
    delayedSchedule: () => buildKey('delayed_schedule', p),
    delayedBucket: (ts) => buildKey('delayed_bucket', { ns, ts: String(ts) }),
    delayedTimestamps: (item) => buildKey('delayed_timestamps', { ns, item }),
    retrySet: () => buildKey('retry_set', p),
    schedules: () => buildKey('schedules', p),
    schedule: (name) => buildKey('schedule', { ns, name }),
    wakeSchedule: () => buildKey('wake_schedule', p),
    // protocol.md 15.2
    routes: () => buildKey('routes', p),
  });
}
