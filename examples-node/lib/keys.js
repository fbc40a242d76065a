// The jobwire key builder: the only place in this package that builds Redis key names.
// It mirrors spec/key-layout.md ("Key templates as data") exactly; test/keys.test.js checks
// every template against that table.

export const DEFAULT_NAMESPACE = 'resque';

/** The templates of spec/key-layout.md, by name. */
export const TEMPLATES = Object.freeze({
  queues: '{ns}:queues',
  queue: '{ns}:queue:{queue}',
  workers: '{ns}:workers',
  worker_record: '{ns}:worker:{worker_id}',
  worker_started: '{ns}:worker:{worker_id}:started',
  heartbeats: '{ns}:workers:heartbeat',
  stat_processed: '{ns}:stat:processed',
  stat_failed: '{ns}:stat:failed',
  stat_processed_worker: '{ns}:stat:processed:{worker_id}',
  stat_failed_worker: '{ns}:stat:failed:{worker_id}',
  failed: '{ns}:failed',
  pause_all: '{ns}:pause-all-workers',
  meta: '{ns}:jobwire:meta',
  leases: '{ns}:jobwire:leases',
  inflight: '{ns}:jobwire:inflight:{worker_id}',
  deaths: '{ns}:jobwire:deaths',
  worker_info: '{ns}:jobwire:worker:{worker_id}',
  control: '{ns}:jobwire:control:{worker_id}',
  wake: '{ns}:jobwire:wake:{queue}',
  wake_new_queue: '{ns}:jobwire:wake-new-queue',
  minutes: '{ns}:jobwire:minutes:{day}',
  conformance_echo: '{ns}:jobwire:conformance:echo',
});

/** The 1.1 templates of spec/key-layout.md ("Protocol 1.1 key templates"), kept apart as there. */
export const TEMPLATES_1_1 = Object.freeze({
  delayed_schedule: '{ns}:delayed_queue_schedule',
  delayed_bucket: '{ns}:delayed:{ts}',
  delayed_timestamps: '{ns}:timestamps:{item}',
  retry_set: '{ns}:jobwire:retry',
  schedules: '{ns}:jobwire:schedules',
  schedule: '{ns}:jobwire:schedule:{name}',
  wake_schedule: '{ns}:jobwire:wake-schedule',
});

// 1 to 255 bytes of UTF-8 without ':', '*', ',', whitespace or control characters.
// eslint-disable-next-line no-control-regex
const BAD_QUEUE_CHARS = /[:*,\s\u0000-\u001f\u007f-\u009f]/u;

/** True when `name` is a valid queue name (key-layout.md, "Namespace"). */
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

/** Fills template `name` with params {ns, queue, worker_id, day}. */
export function buildKey(name, params = {}) {
  const template = TEMPLATES[name] ?? TEMPLATES_1_1[name];
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
  });
}
