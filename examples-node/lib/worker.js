// The jobwire worker (protocol.md sections 7 and 8), running jobs in-process ("inline" mode) or,
// with option fork, in a child process it can kill (lib/job-runner.js).
//
// Worker: one protocol worker (one id, one job at a time, its own blocking connection).
// WorkerProcess: N workers in this process sharing one handler registry, plus signals and the
// process title.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { keys as keyBuilder, assertQueueName, isValidQueueName } from './keys.js';
import { scripts } from './scripts.js';
import { jobPayloadError } from './validate.js';
import { specVersion, specMajor, packageVersion } from './spec.js';
import { DEFAULTS } from './options.js';
import { DEFAULTS_1_1, SCHEDULER_MODES } from './config.js';
import { compareUtf8 } from './client.js';
import { ChildRunner } from './job-runner.js';
import { stderrLogger } from './log.js';
import { describeError, stackFrames } from './errors.js';

export { stderrLogger, describeError, stackFrames }; // their home was this module; kept for importers
import { Promoter } from './promotion.js';
import { policyFromMember, parseDefaultPolicy, retryDelayMs, retries } from './backoff.js';
import {
  connect, parseJson, needsLosslessParse, failedAt, runAt, startedAt, utcDay, backoffMs, sleep,
} from './util.js';

export { DEFAULTS }; // spec/options.json, by camelCase name

const LOCAL_WAIT_MS = 150; // protocol.md 14.3: a due time this close is waited for locally, not by BLPOP

const CONTROL_POLL_MS = 1000; // protocol.md 7.5: read the control list at least this often while a job runs
const LEAVE_TIMEOUT_MS = 10000; // give up unregistering (Redis unreachable) after this long
const NONE = Object.freeze({ op: 'none', token: '', record: '' });

/**
 * A failure record built around the raw payload bytes (never re-encoded), with the keys in the
 * order of protocol.md 6.2. `payloadIsObject` false embeds the payload as a JSON string.
 */
export function failureRecord(rawPayload, { exception, error, backtrace = [] }, workerId, queue,
  { date = new Date(), payloadIsObject = true } = {}) {
  const raw = Buffer.isBuffer(rawPayload) ? rawPayload : Buffer.from(String(rawPayload), 'utf8');
  const payload = payloadIsObject ? raw : Buffer.from(JSON.stringify(raw.toString('utf8')), 'utf8');
  return Buffer.concat([
    Buffer.from(`{"failed_at":${JSON.stringify(failedAt(date))},"payload":`, 'utf8'),
    payload,
    Buffer.from(`,"exception":${JSON.stringify(String(exception))},"error":${JSON.stringify(String(error))}` +
      `,"backtrace":${JSON.stringify((backtrace ?? []).map(String))},"worker":${JSON.stringify(workerId)}` +
      `,"queue":${JSON.stringify(queue)}}`, 'utf8'),
  ]);
}

/**
 * Parses a --queues value ("a,b", "high,*") or an array into a queue list (protocol.md 7.2):
 * queue names and at most one "*", comma-separated, nothing trimmed, no empty entry, no repeat.
 */
export function parseQueues(queues) {
  const list = Array.isArray(queues) ? queues.map(String) : String(queues ?? '').split(',');
  if (list.length === 0 || (list.length === 1 && list[0] === '')) {
    throw new TypeError('no queues given (--queues a,b or JOBWIRE_QUEUES)');
  }
  const seen = new Set();
  for (const q of list) {
    if (q !== '*') assertQueueName(q);
    if (seen.has(q)) throw new TypeError(`--queues lists ${JSON.stringify(q)} twice`);
    seen.add(q);
  }
  return list;
}

/**
 * The queues to reserve from: "*" replaced, at its place, by every valid name of `known` that is
 * not listed explicitly, in code point order (protocol.md 7.2).
 */
export function expandQueues(configured, known) {
  if (!configured.includes('*')) return [...configured];
  const rest = known.filter((q) => isValidQueueName(q) && !configured.includes(q)).sort(compareUtf8);
  return configured.flatMap((q) => (q === '*' ? rest : [q]));
}

class Stopped extends Error {}

/**
 * A one-shot event that in-flight awaits can race against. Unlike racing a long-pending promise,
 * it keeps no reaction per call once the call has settled (a worker makes millions of calls).
 */
class Latch {
  constructor() {
    this.fired = false;
    this.listeners = new Set();
  }

  fire() {
    if (this.fired) return;
    this.fired = true;
    for (const l of this.listeners) l();
    this.listeners.clear();
  }

  /** Settles like `promise`, or with `onFire()` (its value or its throw) when fired first. */
  race(promise, onFire) {
    return new Promise((resolve, reject) => {
      const fired = () => {
        try {
          resolve(onFire());
        } catch (err) {
          reject(err);
        }
      };
      if (this.fired) {
        promise.catch(() => {});
        fired();
        return;
      }
      this.listeners.add(fired);
      promise.then(
        (v) => { this.listeners.delete(fired); resolve(v); },
        (e) => { this.listeners.delete(fired); reject(e); },
      );
    });
  }
}

const throwStopped = () => { throw new Stopped(); };

export class Worker extends EventEmitter {
  /**
   * @param {object} options
   * @param {string[]|string} options.queues  priority order; "*" = every queue, alphabetically
   * @param {number} [options.index]          n of "host:pid+n:queues"; omit for a process with one worker
   * @param {Map<string,Function>} [options.handlers] shared handler registry
   * @param {boolean} [options.fork]         run jobs in a child process that can be killed
   * @param {string[]} [options.jobModules]   with fork: modules the child imports for its handlers
   * Other options: redisUrl, namespace, heartbeatMs, leaseMs, blockTimeoutMs, maxDeaths,
   * jobTimeoutMs, maxPayloadBytes, logger, host, pid.
   */
  constructor(options = {}) {
    super();
    const o = { ...DEFAULTS, ...options };
    this.options = o;
    if (!(o.leaseMs > 2 * o.heartbeatMs)) {
      throw new RangeError(`lease-ms (${o.leaseMs}) must exceed 2 x heartbeat-ms (${o.heartbeatMs})`);
    }
    this.queuesConfigured = parseQueues(o.queues);
    this.wildcard = this.queuesConfigured.includes('*');
    this.host = o.host ?? os.hostname();
    this.pidLabel = `${o.pid ?? process.pid}${o.index ? `+${o.index}` : ''}`;
    this.id = `${this.host}:${this.pidLabel}:${this.queuesConfigured.join(',')}`;
    this.k = keyBuilder(o.namespace);
    this.scripts = scripts();
    this.handlers = o.handlers ?? new Map();
    this.log = o.logger ?? stderrLogger();
    this.runner = o.fork ? new ChildRunner({
      modules: o.jobModules, redisUrl: o.redisUrl, namespace: o.namespace, workerId: this.id, log: this.log,
    }) : null;
    o.defaultRetry ??= DEFAULTS_1_1.defaultRetry;
    o.scheduler ??= DEFAULTS_1_1.scheduler;
    this.defaultPolicy = parseDefaultPolicy(o.defaultRetry);
    if (!SCHEDULER_MODES.includes(o.scheduler)) throw new RangeError(`--scheduler is all, promote or off, not ${JSON.stringify(o.scheduler)}`);
    this.promoter = o.scheduler === 'off' ? null : new Promoter({
      keys: this.k, scripts: this.scripts, workerId: this.id, maxPayloadBytes: o.maxPayloadBytes,
      fireSchedules: o.scheduler === 'all', log: this.log,
    });
    this.nextDueAt = null; // Date.now() value of the next delayed/retry/schedule due time, or null

    this.cmd = null;
    this.block = null;
    this.queueList = this.wildcard ? [] : [...this.queuesConfigured];
    this.pending = NONE; // the outcome of the last job, settled by the next work.lua call
    this.current = null; // the job running now
    this.epoch = 0; // registrations so far; a job reserved under an older one is not settled
    this.paused = false;
    this.stopping = null; // null | 'quit' | 'terminate'
    this.state = 'Starting';
    this.resync = false;
    this.heartbeatTimer = null;
    this.beating = null;
    this.stats = { processed: 0, failed: 0 };
    this.stopLatch = new Latch(); // quit or terminate
    this.terminateLatch = new Latch(); // terminate only
  }

  /** Registers `fn` as the handler of job class `className`; it runs as fn.apply(ctx, args). */
  register(className, fn) {
    if (typeof fn !== 'function') throw new TypeError(`handler for ${className} must be a function`);
    this.handlers.set(className, fn);
    return this;
  }

  // ---- life ---------------------------------------------------------------------------

  /** Runs until told to stop; resolves after the worker has left. Rejects on a spec mismatch. */
  async run() {
    const onError = (err) => this.log.debug(`${this.id}: redis: ${err.message}`);
    this.cmd = connect(this.options.redisUrl, { onError });
    this.onRedisError = onError;
    try {
      // The job child starts while we register; one that cannot load its modules is fatal.
      const child = this.runner?.start();
      child?.catch(() => {});
      await this.registerUntilDone();
      if (this.stopping) return;
      this.scheduleBeat();
      if (child) await this.stopLatch.race(child, () => undefined); // a stop need not wait for it
      if (this.stopping) return;
      await this.loop();
    } finally {
      clearTimeout(this.heartbeatTimer);
      this.heartbeatTimer = null;
      if (this.registered) await this.leave();
      await this.runner?.stop();
      this.closeBlock();
      this.cmd.disconnect();
      this.setState('Stopped');
    }
  }

  async loop() {
    let errors = 0;
    while (!this.stopping) {
      try {
        if (this.paused) {
          // protocol.md 7.3/7.9: a paused worker holds no finished job; settle it first (no queues)
          if (this.pending.op !== 'none') await this.untilStopped(this.work([]));
          await this.idleBlock(true);
          continue;
        }
        if (this.resync) {
          const held = await this.untilStopped(this.resynchronise());
          if (held) {
            await this.runJob(held.token, held.queue, held.payload);
            continue;
          }
        }
        if (this.stopping) break;
        // While Redis is unreachable the call waits for it; a stop request must not.
        const reply = await this.untilStopped(this.work(this.queueList));
        errors = 0;
        switch (reply.status) {
          case 'job':
            await this.runJob(reply.token, reply.queue, reply.payload);
            break;
          case 'retry':
            break;
          case 'expired':
            this.log.warn(`${this.id}: lease expired; registering again`);
            await this.untilStopped(this.registerSelf());
            break;
          default: // 'empty', 'paused', 'settled' (no queue known yet)
            if (this.promoter && (await this.untilStopped(this.promote()))) break; // due jobs moved: reserve again
            this.setState(reply.status === 'paused' ? 'Paused' : 'Waiting');
            await this.idleBlock(false);
        }
      } catch (err) {
        if (this.stopping) break;
        if (err instanceof Stopped) continue;
        errors += 1;
        const delay = backoffMs(errors);
        this.log.warn(`${this.id}: ${err.message}; retrying in ${delay} ms`);
        await this.sleepUnlessStopped(delay);
      }
    }
  }

  /** `promise`, or a Stopped rejection as soon as the worker is told to stop. */
  untilStopped(promise) {
    return this.stopLatch.race(promise, throwStopped);
  }

  /** Sleeps `ms`, less if told to stop. */
  sleepUnlessStopped(ms) {
    return this.stopLatch.race(sleep(ms), () => undefined);
  }

  /** Graceful stop: finish the current job, settle it, leave. */
  quit() {
    if (this.stopping) return;
    this.stopping = 'quit';
    this.setState('Shutting down');
    this.stopLatch.fire();
    this.closeBlock();
  }

  /** Fast stop: leave at once; the held job goes back to its queue and a late outcome is dropped. */
  terminate() {
    if (this.stopping === 'terminate') return;
    this.stopping = 'terminate';
    this.setState('Shutting down');
    this.stopLatch.fire();
    this.terminateLatch.fire();
    this.runner?.kill('term');
    this.closeBlock();
  }

  /** Kills the running job (fork mode), if its token matches when one is given; false if none. */
  killCurrent(reason, token) {
    if (!this.runner || !this.current || (token && token !== this.current.token)) return false;
    return this.runner.kill(reason);
  }

  pause() {
    if (this.paused) return;
    this.paused = true;
    this.log.info(`${this.id}: paused`);
    this.setState(this.current ? this.state : 'Paused');
    this.setInfoState();
    this.closeBlock();
  }

  resume() {
    if (!this.paused) return;
    this.paused = false;
    this.log.info(`${this.id}: resumed`);
    if (!this.current) this.setState('Waiting');
    this.setInfoState();
    this.closeBlock();
  }

  setInfoState() {
    if (!this.registered) return;
    this.cmd.hset(this.k.workerInfo(this.id), 'state', this.paused ? 'paused' : 'idle')
      .catch((err) => this.log.warn(`${this.id}: could not record state: ${err.message}`));
  }

  setState(state) {
    this.state = state;
    this.emit('state', state);
  }

  // ---- registration, heartbeat, recovery ----------------------------------------------

  heartbeatKeys() {
    const k = this.k;
    return [k.workers(), k.heartbeats(), k.leases(), k.workerStarted(this.id), k.workerInfo(this.id), k.meta()];
  }

  async registerUntilDone() {
    let attempt = 0;
    while (!this.stopping) {
      try {
        await this.untilStopped(this.registerSelf());
        return;
      } catch (err) {
        if (err instanceof Stopped) return;
        if (/JOBWIRE_SPEC_MISMATCH/.test(err.message)) throw err;
        attempt += 1;
        const delay = backoffMs(attempt);
        this.log.warn(`${this.id}: cannot register (${err.message}); retrying in ${delay} ms`);
        await this.sleepUnlessStopped(delay);
      }
    }
  }

  async registerSelf() {
    const now = new Date();
    this.startedMs ??= now.getTime();
    const info = {
      impl: 'node',
      impl_version: packageVersion(),
      spec: specVersion(),
      host: this.host,
      pid: this.pidLabel,
      queues: this.queuesConfigured.join(','),
      started_ms: String(this.startedMs),
      mode: this.runner ? 'fork' : 'inline',
      state: this.paused ? 'paused' : 'idle',
    };
    if (this.epoch === 0 && (await this.cmd.exists(this.k.inflight(this.id)))) {
      // A dead predecessor had this very id (same host and pid, e.g. pid 1 in a container):
      // recover its job as a death before registering, or a job that kills the whole
      // process would be handed back to us forever (protocol.md 7.3).
      const r = await this.unregister(this.id, 'dead');
      this.log.warn(`${this.id}: recovered the job of a dead worker with this id (${r[1]})`);
    }
    const reply = await this.scripts.call(this.cmd, 'heartbeat', this.heartbeatKeys(),
      [this.id, this.options.leaseMs, 'register', startedAt(now), specMajor(), ...Object.entries(info).flat()]);
    this.epoch += 1;
    this.registered = true;
    this.pending = NONE; // nothing reserved under an older registration may be settled
    this.log.info(`${this.id}: registered (spec ${specVersion()}, lease ${this.options.leaseMs} ms)`);
    if (this.wildcard) await this.refreshQueues();
    this.recoverAll(reply.slice(1));
  }

  scheduleBeat() {
    if (this.stopping) return;
    this.heartbeatTimer = setTimeout(() => {
      this.beating = this.beat().finally(() => {
        this.beating = null;
        this.scheduleBeat();
      });
    }, this.options.heartbeatMs);
  }

  async beat() {
    try {
      const reply = await this.scripts.call(this.cmd, 'heartbeat', this.heartbeatKeys(),
        [this.id, this.options.leaseMs, 'beat', '', specMajor()]);
      if (this.stopping) return;
      if (reply[0] === 'unknown') {
        // We were recovered as dead: our held job is gone, so its outcome must not be settled.
        this.log.warn(`${this.id}: recovered as dead by a peer (lease lapsed); registering again`);
        await this.registerSelf();
        return;
      }
      this.recoverAll(reply.slice(1));
      // protocol.md 14.3 (2): a worker busy with a job still promotes once per beat.
      if (this.current && this.promoter) await this.promote({ remember: false });
    } catch (err) {
      if (!this.stopping) this.log.warn(`${this.id}: heartbeat failed: ${err.message}`);
    }
  }

  /**
   * One promotion pass (protocol.md 14.3); true when it moved jobs or fired schedules. Bad data
   * is reported by the scripts and never stops the worker; a Redis outage is the caller's.
   * Only the main loop's pass (`remember`) sets the due time its block waits for: a busy
   * worker's beat pass may finish late and must not overwrite a newer one.
   */
  async promote({ remember = true } = {}) {
    let done;
    try {
      done = await this.promoter.run(this.cmd);
    } catch (err) {
      if (err?.name !== 'ReplyError') throw err;
      this.log.error(`${this.id}: promotion failed: ${err.message}`);
      return false;
    }
    if (remember) this.nextDueAt = done.nextDueInMs === null ? null : Date.now() + done.nextDueInMs;
    return done.moved > 0 || done.fired > 0;
  }

  recoverAll(deadIds) {
    for (const dead of deadIds) {
      this.recover(dead).catch((err) => this.log.warn(`${this.id}: recovering ${dead}: ${err.message}`));
    }
  }

  /** Recovers a peer whose lease lapsed (protocol.md 7.6 / 8.6). */
  async recover(deadId) {
    const r = await this.unregister(deadId, 'expired');
    if (r[0] === 'done') this.log.info(`${this.id}: recovered dead worker ${deadId} (job: ${r[1]})`);
    return r;
  }

  /** unregister.lua for `workerId` in `mode`, re-reading the held job's queue on "retry". */
  async unregister(workerId, mode) {
    const k = this.k;
    for (let attempt = 0; ; attempt++) {
      const q = await this.cmd.hget(k.inflight(workerId), 'queue');
      const keys = [
        k.leases(), k.workers(), k.heartbeats(), k.workerRecord(workerId), k.workerStarted(workerId),
        k.inflight(workerId), k.statProcessedWorker(workerId), k.statFailedWorker(workerId),
        k.workerInfo(workerId), k.control(workerId), k.deaths(), k.failed(), k.statProcessed(),
        k.statFailed(), k.minutes(utcDay()),
        q ? k.queue(q) : k.inflight(workerId), q ? k.wake(q) : k.inflight(workerId),
      ];
      const r = await this.scripts.call(this.cmd, 'unregister', keys,
        [workerId, mode, q ?? '', failedAt(), this.options.maxDeaths, this.id]);
      if (r[0] !== 'retry' || attempt >= 10) return r;
    }
  }

  /** Settles a finished job if any, then unregister.lua mode self. Bounded in time. */
  async leave() {
    const work = async () => {
      try {
        if (this.pending.op !== 'none') await this.work([]);
      } catch (err) {
        this.log.warn(`${this.id}: could not settle the last job: ${err.message}`);
      }
      const r = await this.unregister(this.id, 'self');
      this.registered = false;
      this.log.info(`${this.id}: left (held job: ${r[1]})`);
    };
    let timer;
    // Redis unreachable: do not wait long; the lease lapses and a peer recovers what we held.
    const limit = this.cmd.status === 'ready' ? LEAVE_TIMEOUT_MS : LEAVE_TIMEOUT_MS / 5;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => {
        this.log.warn(`${this.id}: could not unregister within ${limit} ms; leaving anyway`);
        resolve();
      }, limit);
    });
    try {
      await Promise.race([work(), timeout]);
    } catch (err) {
      this.log.warn(`${this.id}: unregister failed: ${err.message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- settle and reserve -------------------------------------------------------------

  /** work.lua: settles this.pending and reserves from `queues` (none: settle only). */
  async work(queues) {
    if (this.pending.op === 'retry') await this.settleRetry();
    const k = this.k;
    const id = this.id;
    const p = this.pending;
    const now = new Date();
    const day = utcDay(now);
    if (!this.workKeys || this.workKeys.day !== day) {
      // the keys that do not depend on the queues, built once per UTC day
      this.workKeys = {
        day,
        fixed: [
          k.workerRecord(id), k.inflight(id), k.statProcessed(), k.statProcessedWorker(id), k.statFailed(),
          k.statFailedWorker(id), k.failed(), k.deaths(), k.minutes(day), k.leases(), k.pauseAll(),
          k.workerRecord(id), k.workerRecord(id),
        ],
      };
    }
    if (this.queueKeys?.list !== queues) {
      this.queueKeys = { list: queues, keys: [...queues.map((q) => k.queue(q)), ...queues.map((q) => k.wake(q))] };
    }
    const keys = [...this.workKeys.fixed, ...this.queueKeys.keys];
    const args = [id, p.op, p.token, p.record, failedAt(now), runAt(now), this.options.maxDeaths,
      this.options.maxPayloadBytes, ...queues];
    let reply;
    try {
      reply = await this.scripts.call(this.cmd, 'work', keys, args, { buffers: true });
    } catch (err) {
      // The call may or may not have run (e.g. the connection dropped before the reply):
      // look at the in-flight hash before calling again (resynchronise).
      this.resync = true;
      throw err;
    }
    this.pending = NONE;
    const settled = reply[0].toString();
    if (p.op !== 'none') this.noteSettled(p, settled);
    const status = reply[1].toString();
    if (status !== 'job') return { settled, status };
    return { settled, status, token: reply[2].toString(), queue: reply[3].toString(), payload: reply[4] };
  }

  /**
   * retry.lua: schedules the failed job's next attempt (protocol.md 14.4), leaving nothing
   * pending; when Redis refuses it (e.g. a retry key of the wrong type) the job is failed
   * instead, so it lands in the failed list rather than being lost.
   */
  async settleRetry() {
    const k = this.k;
    const id = this.id;
    const p = this.pending;
    const keys = [k.workerRecord(id), k.inflight(id), k.statProcessed(), k.statProcessedWorker(id), k.statFailed(),
      k.statFailedWorker(id), k.deaths(), k.minutes(utcDay()), k.retrySet(), k.wakeSchedule()];
    let reply;
    try {
      reply = await this.scripts.call(this.cmd, 'retry', keys, [id, p.token, p.delayMs, p.entry, p.queue]);
    } catch (err) {
      if (err?.name !== 'ReplyError' || /^(NOSCRIPT|LOADING)/.test(err.message)) {
        this.resync = true; // the call may have run: see work()
        throw err;
      }
      this.log.error(`${id}: Redis refused the retry of job ${p.token} (${err.message}); failing it instead`);
      this.pending = { op: 'fail', token: p.token, record: p.record };
      return;
    }
    if (String(reply[0]) === 'stale') this.log.warn(`${id}: job ${p.token} was recovered elsewhere; its retry is dropped`);
    this.pending = NONE;
  }

  noteSettled(p, settled) {
    if (settled === 'stale') this.log.warn(`${this.id}: job ${p.token} was no longer held when settled (stale)`);
  }

  /**
   * After a work.lua call whose reply was lost: if the in-flight hash holds a job other than the
   * one being settled, that call reserved it; returns it, to be run instead of reserving again
   * (which would overwrite the in-flight hash and lose that job). Else null.
   */
  async resynchronise() {
    const [token, queue, payload] = await this.cmd.hmgetBuffer(this.k.inflight(this.id), 'token', 'queue', 'payload');
    this.resync = false;
    if (!token || token.toString() === this.pending.token) return null;
    this.log.warn(`${this.id}: resuming job ${token.toString()} reserved by a call whose reply was lost`);
    this.pending = NONE;
    return { token: token.toString(), queue: queue.toString(), payload };
  }

  // ---- idle ---------------------------------------------------------------------------

  closeBlock() {
    const b = this.block;
    this.block = null;
    this.interruptBlock?.();
    this.interruptBlock = null;
    if (b) b.disconnect();
  }

  /** BLPOP on the control list (and, unless paused, the wake markers); handles a command. */
  async idleBlock(controlOnly) {
    if (this.stopping) return;
    if (controlOnly) this.setState('Paused');
    const k = this.k;
    const control = k.control(this.id);
    const blockKeys = [control];
    if (!controlOnly) {
      for (const q of this.queueList) blockKeys.push(k.wake(q));
      if (this.wildcard) blockKeys.push(k.wakeNewQueue());
      if (this.promoter) blockKeys.push(k.wakeSchedule());
    }
    let timeoutMs = this.options.blockTimeoutMs;
    if (!controlOnly && this.promoter && this.nextDueAt !== null) {
      // protocol.md 14.3: wake when the next job falls due; Redis times a blocked client out on
      // its event-loop tick (up to 100 ms late), so the last moments are waited for here.
      const dueIn = Math.max(1, this.nextDueAt - Date.now());
      if (dueIn < LOCAL_WAIT_MS && dueIn <= timeoutMs) {
        this.nextDueAt = null;
        await this.sleepUnlessStopped(dueIn);
        return;
      }
      timeoutMs = Math.min(timeoutMs, Math.max(1, dueIn - LOCAL_WAIT_MS));
    }
    if (!this.block) this.block = connect(this.options.redisUrl, { onError: this.onRedisError });
    const block = this.block;
    // closeBlock() interrupts the wait: disconnecting alone does not settle a BLPOP that sits in
    // ioredis's offline queue while Redis is unreachable.
    const interrupted = new Promise((resolve, reject) => { this.interruptBlock = () => reject(new Stopped()); });
    let res;
    try {
      res = await Promise.race([block.blpop(...blockKeys, (timeoutMs / 1000).toFixed(3)), interrupted]);
    } catch (err) {
      if (block !== this.block || this.stopping) throw new Stopped(); // interrupted on purpose
      throw err;
    }
    if (res && res[0] === control) this.command(res[1]);
    if (this.wildcard) await this.untilStopped(this.refreshQueues());
  }

  async refreshQueues() {
    // Names that are not UTF-8 cannot be queue names (a lossy decode would name another key).
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    const all = [];
    for (const raw of await this.cmd.smembersBuffer(this.k.queues())) {
      try { all.push(utf8.decode(raw)); } catch { /* skipped, as every invalid name is */ }
    }
    this.queueList = expandQueues(this.queuesConfigured, all);
  }

  /** A control-list command (protocol.md 7.5); unknown ones are ignored. */
  command(text) {
    const [cmd, arg] = String(text).trim().split(/\s+/);
    switch (cmd) {
      case 'pause': this.pause(); break;
      case 'resume': this.resume(); break;
      case 'quit': this.log.info(`${this.id}: quit requested`); this.quit(); break;
      case 'kill':
        if (this.runner) this.killCurrent('killed by an operator', arg);
        else this.log.warn(`${this.id}: ignoring "kill${arg ? ` ${arg}` : ''}": an in-process job cannot be killed`);
        break;
      default:
        this.log.debug(`${this.id}: ignoring unknown control command ${JSON.stringify(text)}`);
    }
  }

  async pollControl() {
    for (let i = 0; i < 10 && !this.stopping; i++) {
      const c = await this.cmd.lpop(this.k.control(this.id));
      if (c === null) return;
      this.command(c);
    }
  }

  // ---- running a job ------------------------------------------------------------------

  /** Runs a reserved job and leaves its outcome in this.pending (protocol.md 7.4). */
  async runJob(token, queue, raw) {
    const epoch = this.epoch;
    const text = raw.toString('utf8');
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      // lua-cjson accepted what JSON.parse does not (e.g. hex numbers, NaN): keep the bytes as a string.
      this.fail(token, raw, queue, { exception: 'jobwire.InvalidJSON', error: `payload is not valid JSON: ${err.message}` }, false);
      return;
    }
    const invalid = jobPayloadError(doc);
    if (invalid) {
      this.fail(token, raw, queue, { exception: 'jobwire.InvalidPayload', error: `payload does not match job.schema.json: ${invalid}` });
      return;
    }
    if (this.runner) {
      await this.runInChild(token, queue, raw, text, doc, epoch);
      return;
    }
    const className = doc.class;
    const handler = this.handlers.get(className);
    if (!handler) {
      this.fail(token, raw, queue, { exception: 'jobwire.UnknownClass', error: `no handler registered for class ${JSON.stringify(className)}` });
      return;
    }
    const args = needsLosslessParse(text) ? parseJson(text).args ?? [] : doc.args ?? [];
    const startedMs = Date.now();
    this.current = { token, queue, className, startedMs };
    this.setState('Processing');
    const attempt = 1 + (Array.isArray(doc.attempts) ? doc.attempts.length : 0); // protocol.md 14.4
    const ctx = {
      id: typeof doc.id === 'string' ? doc.id : null,
      className, queue, token, args, payload: text, worker: this.id, pid: process.pid, attempt,
      redis: this.cmd, keys: this.k, log: this.log,
    };
    const controlTimer = setInterval(() => {
      this.pollControl().catch((err) => this.log.debug(`${this.id}: control poll: ${err.message}`));
    }, CONTROL_POLL_MS);
    let timeoutTimer;
    let job = (async () => {
      const result = await handler.apply(ctx, args);
      if (result instanceof Error) throw result;
      return { ok: true };
    })().catch((err) => ({ ok: false, err }));
    if (this.options.jobTimeoutMs > 0) {
      job = Promise.race([job, new Promise((resolve) => {
        timeoutTimer = setTimeout(() => resolve({ timeout: true }), this.options.jobTimeoutMs);
      })]);
    }
    let outcome;
    try {
      outcome = await this.terminateLatch.race(job, () => ({ abandoned: true }));
    } finally {
      clearInterval(controlTimer);
      clearTimeout(timeoutTimer);
      this.current = null;
    }
    if (outcome.abandoned) {
      this.log.warn(`${this.id}: leaving while ${className} (${token}) runs; it goes back to ${queue}`);
      return;
    }
    if (epoch !== this.epoch) {
      this.log.warn(`${this.id}: not settling ${className} (${token}): this worker was recovered as dead meanwhile`);
      return;
    }
    if (outcome.timeout) {
      this.retryOrFail(doc, token, raw, queue, {
        exception: 'jobwire.Timeout',
        error: `job ran longer than ${this.options.jobTimeoutMs} ms; an in-process job cannot be killed, its outcome is ignored`,
      });
      return;
    }
    if (outcome.ok) {
      this.pending = { op: 'ok', token, record: '' };
      this.stats.processed += 1;
      this.log.debug(`${this.id}: ${className} done in ${Date.now() - startedMs} ms`);
    } else {
      this.retryOrFail(doc, token, raw, queue, describeError(outcome.err));
    }
    if (!this.paused && !this.stopping) this.setState('Waiting');
  }

  /** Fork mode: runs the job in this worker's child (lib/job-runner.js), settles what it tells. */
  async runInChild(token, queue, raw, text, doc, epoch) {
    const className = doc.class;
    this.current = { token, queue, className, startedMs: Date.now() };
    this.setState('Processing');
    const controlTimer = setInterval(() => {
      this.pollControl().catch((err) => this.log.debug(`${this.id}: control poll: ${err.message}`));
    }, CONTROL_POLL_MS);
    let o;
    try {
      const attempt = 1 + (Array.isArray(doc.attempts) ? doc.attempts.length : 0); // protocol.md 14.4
      o = await this.runner.run({ token, queue, className, payload: text, jobId: typeof doc.id === 'string' ? doc.id : null, attempt },
        { timeoutMs: this.options.jobTimeoutMs });
    } catch (err) {
      if (this.stopping) return; // given back to its queue when the worker leaves
      throw err;
    } finally {
      clearInterval(controlTimer);
      this.current = null;
    }
    if (o.killedBy === 'term') {
      this.log.warn(`${this.id}: killed ${className} (${token}) to leave; it goes back to ${queue}`);
      return;
    }
    if (epoch !== this.epoch) {
      this.log.warn(`${this.id}: not settling ${className} (${token}): this worker was recovered as dead meanwhile`);
      return;
    }
    if (o.ok) {
      this.pending = { op: 'ok', token, record: '' };
      this.stats.processed += 1;
    } else if (o.killedBy === 'timeout') {
      this.retryOrFail(doc, token, raw, queue, { exception: 'jobwire.Timeout', error: `job ran longer than ${this.options.jobTimeoutMs} ms; child ${o.pid} was killed` });
    } else if (o.killedBy) {
      this.fail(token, raw, queue, { exception: 'jobwire.Killed', error: `${o.killedBy}; child ${o.pid} was killed` });
    } else if (o.crash) {
      this.log.warn(`${this.id}: ${o.crash} while running ${className}`);
      this.pending = { op: 'crash', token, record: o.crash };
      this.stats.processed += 1;
    } else if (o.notRetried) {
      this.fail(token, raw, queue, o.error);
    } else {
      this.retryOrFail(doc, token, raw, queue, o.error);
    }
    if (!this.paused && !this.stopping) this.setState('Waiting');
  }

  /** A job error or timeout: another attempt under the job's policy, else fail (protocol.md 14.4). */
  retryOrFail(doc, token, raw, queue, error) {
    const policy = policyFromMember(doc.retry) ?? this.defaultPolicy;
    const attempt = 1 + (Array.isArray(doc.attempts) ? doc.attempts.length : 0);
    if (!retries(policy, attempt)) {
      this.fail(token, raw, queue, error);
      return;
    }
    const jobId = typeof doc.id === 'string' ? doc.id : '';
    const delayMs = retryDelayMs(policy, jobId, attempt);
    const entry = JSON.stringify({
      attempt, failed_at_ms: Date.now(), exception: String(error.exception), error: String(error.error),
      worker: this.id, queue, delay_ms: delayMs,
    });
    const record = failureRecord(raw, error, this.id, queue); // used if Redis refuses the retry
    this.pending = { op: 'retry', token, record, delayMs, entry, queue };
    this.stats.processed += 1;
    this.stats.failed += 1;
    this.log.info(`${this.id}: job ${jobId || doc.class} attempt ${attempt} failed (${error.exception}); retrying in ${delayMs} ms`);
  }

  fail(token, raw, queue, error, payloadIsObject = true) {
    this.pending = { op: 'fail', token, record: failureRecord(raw, error, this.id, queue, { payloadIsObject }) };
    this.stats.processed += 1;
    this.stats.failed += 1;
    this.log.debug(`${this.id}: job ${token} failed: ${error.exception}: ${error.error}`);
  }
}

/**
 * N protocol workers in this process (ids host:pid+n:queues, or host:pid:queues for N = 1)
 * sharing one handler registry; owns the process title and, with installSignals(), the signals
 * of protocol.md 7.5.
 */
export class WorkerProcess extends EventEmitter {
  constructor(options = {}) {
    super();
    const o = { ...DEFAULTS, ...options };
    this.options = o;
    this.handlers = o.handlers ?? new Map();
    this.log = o.logger ?? stderrLogger();
    const n = Math.max(1, Math.floor(Number(o.concurrency) || 1));
    this.queuesLabel = parseQueues(o.queues).join(',');
    this.workers = [];
    for (let i = 1; i <= n; i++) {
      const w = new Worker({ ...o, handlers: this.handlers, logger: this.log, index: n === 1 ? undefined : i });
      w.on('state', () => this.scheduleTitle());
      this.workers.push(w);
    }
    this.setTitle('Starting');
  }

  register(className, fn) {
    if (typeof fn !== 'function') throw new TypeError(`handler for ${className} must be a function`);
    this.handlers.set(className, fn);
    return this;
  }

  /** Runs every worker; resolves when all have left. */
  async run() {
    this.log.info(`starting ${this.workers.length} worker(s) on ${this.queuesLabel}: ${this.workers.map((w) => w.id).join(' ')}`);
    const results = await Promise.allSettled(this.workers.map((w) => w.run()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  quit() { this.setTitle('Shutting down'); for (const w of this.workers) w.quit(); }
  terminate() { this.setTitle('Shutting down'); for (const w of this.workers) w.terminate(); }
  pause() { for (const w of this.workers) w.pause(); }
  resume() { for (const w of this.workers) w.resume(); }

  /** Kills every running job (fork mode); false when none could be. */
  killJobs(reason) {
    return this.workers.map((w) => w.killCurrent(reason)).some(Boolean);
  }

  /** SIGQUIT: graceful; SIGTERM/SIGINT: fast; SIGUSR2/SIGCONT: pause/resume; SIGUSR1: kill jobs (fork mode). */
  installSignals() {
    const handlers = {
      SIGQUIT: () => { this.log.info('SIGQUIT: finishing current jobs, then leaving'); this.quit(); },
      SIGTERM: () => { this.log.info('SIGTERM: leaving now'); this.terminate(); },
      SIGINT: () => { this.log.info('SIGINT: leaving now'); this.terminate(); },
      SIGUSR2: () => { this.log.info('SIGUSR2: pausing'); this.pause(); },
      SIGCONT: () => { this.log.info('SIGCONT: resuming'); this.resume(); },
      SIGUSR1: () => {
        if (this.options.fork) this.killJobs('killed by SIGUSR1');
        else this.log.warn('SIGUSR1: an in-process job cannot be killed; ignored');
      },
    };
    for (const [sig, fn] of Object.entries(handlers)) process.on(sig, fn);
    this.removeSignals = () => { for (const [sig, fn] of Object.entries(handlers)) process.off(sig, fn); };
  }

  setTitle(state) {
    try {
      process.title = `jobwire-node/resque-1: ${state}`;
    } catch { /* not settable here */ }
  }

  // Coalesces title changes (setting the title costs a system call; jobs may take microseconds).
  scheduleTitle() {
    if (this.titleTimer) return;
    this.titleTimer = setTimeout(() => {
      this.titleTimer = null;
      this.updateTitle();
    }, 100);
    this.titleTimer.unref?.();
  }

  updateTitle() {
    const ws = this.workers;
    if (ws.some((w) => w.stopping)) return this.setTitle('Shutting down');
    const busy = ws.filter((w) => w.current).sort((a, b) => b.current.startedMs - a.current.startedMs)[0];
    if (busy) {
      const c = busy.current;
      return this.setTitle(`Processing ${c.queue} since ${Math.floor(c.startedMs / 1000)} [${c.className}]`);
    }
    if (ws.every((w) => w.paused)) return this.setTitle('Paused');
    return this.setTitle(`Waiting for ${this.queuesLabel}`);
  }
}
