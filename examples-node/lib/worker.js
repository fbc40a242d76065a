// The jobwire worker (protocol.md sections 7 and 8), running jobs in-process ("inline" mode) or,
// with option fork, in a child process it can kill (lib/job-runner.js).
//
// Worker: one protocol worker (one id, one job at a time; alone, its own connections; in a
// WorkerProcess of N, the process's command connection and idle dispatcher, lib/idle.js). This
// module is its loop (protocol.md 7.9: idle, busy, paused, leaving): settle and reserve, the
// blocking wait, control commands and beats. Its other parts, one module each:
//   membership.js      register, beat, leave, recover peers (heartbeat.lua, unregister.lua)
//   running.js         running a reserved job and deciding its outcome (a mixin of Worker)
//   worker-process.js  WorkerProcess: N workers in one process, signals, the process title
//   idle.js            IdleDispatcher: one blocking call for the idle workers of a process
//   queues.js, failure-record.js, latch.js
//
// Names shared with Python (jobwire/worker.py) and C (jw_worker.c): run() is the worker's whole
// life (register, loop, leave), callWork() one work.lua call (settle and/or reserve), beat() one
// heartbeat, leave() unregistering in mode self.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { keys as keyBuilder } from './keys.js';
import { scripts } from './scripts.js';
import { specVersion, packageVersion } from './spec.js';
import { DEFAULTS, DEFAULTS_1_1, SCHEDULER_MODES } from './options.js';
import { ChildRunner } from './job-runner.js';
import { stderrLogger } from './log.js';
import { describeError, stackFrames } from './errors.js';
import { failureRecord } from './failure-record.js';
import { parseQueues, expandQueues } from './queues.js';
import { Latch, Stopped, throwStopped } from './latch.js';
import { Membership } from './membership.js';
import { jobRunning } from './running.js';
import { Promoter } from './promotion.js';
import { routedElsewhere, routedWarning } from './routing.js';
import { BeatTimer } from './beats.js';
import { parseDefaultPolicy } from './backoff.js';
import { connect, failedAt, runAt, utcDay, backoffMs, sleep } from './util.js';

// Their home was this module; kept for importers (index.js, gateway-worker.js, tests).
export { stderrLogger, describeError, stackFrames, failureRecord, parseQueues, expandQueues };
export { WorkerProcess } from './worker-process.js';
export { DEFAULTS }; // spec/options.json, by camelCase name

const LOCAL_WAIT_MS = 150; // protocol.md 14.3: a due time this close is waited for locally, not by BLPOP
const LEAVE_TIMEOUT_MS = 10000; // give up unregistering (Redis unreachable) after this long
const NONE = Object.freeze({ op: 'none', token: '', record: '' });

export class Worker extends EventEmitter {
  /**
   * @param {object} options
   * @param {string[]|string} options.queues  priority order; "*" = every queue, alphabetically
   * @param {number} [options.index]          n of "host:pid+n:queues"; omit for a process with one worker
   * @param {Map<string,Function>} [options.handlers] shared handler registry
   * @param {boolean} [options.fork]         run jobs in a child process that can be killed
   * @param {string[]} [options.jobModules]   with fork: modules the child imports for its handlers
   * @param {object} [options.shared]       given by WorkerProcess: {redis} the process's command
   *   connection (this worker neither opens nor closes one), and the process beats for it
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
    if (!SCHEDULER_MODES.includes(o.scheduler)) throw new RangeError(`--scheduler is ${SCHEDULER_MODES.join(', ')}, not ${JSON.stringify(o.scheduler)}`);
    this.promoter = o.scheduler === 'off' ? null : new Promoter({
      keys: this.k, scripts: this.scripts, workerId: this.id, maxPayloadBytes: o.maxPayloadBytes,
      fireSchedules: o.scheduler === 'all', log: this.log,
    });
    this.nextDueAt = null; // Date.now() value of the next delayed/retry/schedule due time, or null
    this.nextDueMs = -1; // the same on Redis's clock, as promote.lua gave it (-1: none), for the quiet look
    this.timedOut = false; // the last block popped nothing: a quiet look may do (protocol.md 16.3)

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
    this.beats = null; // BeatTimer of a worker alone; in a WorkerProcess, shared.beats
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
    const shared = this.options.shared;
    this.cmd = shared?.redis ?? connect(this.options.redisUrl, { onError });
    this.onRedisError = onError;
    this.membership = new Membership({
      redis: this.cmd, scripts: this.scripts, keys: this.k, id: this.id,
      leaseMs: this.options.leaseMs, maxDeaths: this.options.maxDeaths, log: this.log,
    });
    // The blocking connection is opened now, while we register, not at the first idle moment:
    // on a cluster a new connection first asks the URL's node for the slot map, and that node
    // may be busy with another namespace's long script (seconds) just when we go idle.
    if (!shared?.idle) this.block ??= connect(this.options.redisUrl, { onError });
    try {
      // The job child starts while we register, and the loop does not wait for it: an idle
      // worker needs no child, and a Node start takes seconds on a loaded machine (the first
      // job waits for it in runInChild). One that cannot load its modules is still fatal, one
      // killed from outside is started again (readyChild).
      this.runner?.readyChild().catch((err) => {
        if (this.stopping) return;
        this.fatal = err;
        this.terminate();
      });
      await this.registerUntilDone();
      if (this.stopping) return;
      if (!shared) this.scheduleBeat(); // else WorkerProcess beats for all its workers at once
      if (!this.options.index || this.options.index === 1) this.warnRouted(); // once per process
      await this.loop();
    } finally {
      this.beats?.stop();
      this.options.shared?.idle?.release(this);
      this.options.shared?.idle?.unpark(this);
      if (this.registered) await this.leave();
      await this.runner?.stop();
      this.closeBlock();
      if (!shared) this.cmd.disconnect();
      this.setState('Stopped');
    }
    if (this.fatal) throw this.fatal;
  }

  async loop() {
    let errors = 0;
    while (!this.stopping) {
      try {
        if (this.paused) {
          this.options.shared?.idle?.release(this); // a paused worker blocks on its own (control only)
          // protocol.md 7.3/7.9: a paused worker holds no finished job; settle it first (no queues)
          if (this.pending.op !== 'none') await this.untilStopped(this.callWork([]));
          await this.idleBlock(true);
          continue;
        }
        if (this.resync) {
          const held = await this.untilStopped(this.resynchronise());
          if (held) {
            this.options.shared?.idle?.release(this);
            this.noteBusy();
            await this.runJob(held.token, held.queue, held.payload);
            continue;
          }
        }
        if (this.stopping) break;
        if (this.timedOut && (await this.untilStopped(this.nothingNew()))) {
          await this.idleBlock(false); // protocol.md 16.3: nothing to reserve or promote; keep waiting
          continue;
        }
        // While Redis is unreachable the call waits for it; a stop request must not.
        const reply = await this.untilStopped(this.callWork(this.queueList));
        errors = 0;
        switch (reply.status) {
          case 'job':
            this.options.shared?.idle?.release(this); // busy: a parked worker watches meanwhile
            this.noteBusy();
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

  /** Registers (again): a new epoch, nothing pending from an older one (protocol.md 7.6). */
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
    await this.membership.register(info, now);
    this.epoch += 1;
    this.registered = true;
    this.pending = NONE; // nothing reserved under an older registration may be settled
    this.log.info(`${this.id}: registered (spec ${specVersion()}, lease ${this.options.leaseMs} ms)`);
    if (this.wildcard) await this.refreshQueues();
  }

  /**
   * protocol.md 15.2: warns once, at start-up, about each of our queues that the routing table of
   * our namespace sends elsewhere (we still serve what is left in ours). Best effort, not awaited.
   */
  warnRouted() {
    const ns = this.options.namespace;
    const named = this.queuesConfigured.filter((q) => q !== '*');
    if (!named.length) return;
    // HMGET of the named queues: protocol.md 8.9's user may run it (HGETALL is for tools)
    this.cmd.hmget(this.k.routes(), ...named).then((values) => {
      const table = Object.fromEntries(named.flatMap((q, i) => (values[i] === null ? [] : [[q, values[i]]])));
      for (const [queue, where] of routedElsewhere(ns, table, this.queuesConfigured)) {
        this.log.warn(`${this.id}: ${routedWarning(ns, queue, where)}`);
      }
    }, (err) => this.log.debug(`${this.id}: cannot read the routing table: ${err.message}`));
  }

  /** Beats of a worker alone (lib/beats.js): every heartbeat-ms while busy, quieter while idle. */
  scheduleBeat() {
    if (this.stopping) return;
    this.beats = new BeatTimer({
      heartbeatMs: this.options.heartbeatMs, leaseMs: this.options.leaseMs,
      beat: () => this.beat(), busy: () => Boolean(this.current),
    });
    this.beats.start();
  }

  /** A job was reserved: beats every heartbeat-ms again (protocol.md 16.2). */
  noteBusy() {
    (this.options.shared?.beats ?? this.beats)?.busyNow();
  }

  /**
   * One heartbeat (heartbeat.lua mode renew); resolves to the renew reply's next_lapse_ms
   * (null: none seen, or the beat failed).
   */
  async beat({ promote = true } = {}) {
    try {
      const { nextLapseMs, unknown } = await this.membership.renew([]);
      await this.afterBeat(unknown.length === 0, { promote });
      return nextLapseMs;
    } catch (err) {
      if (!this.stopping) this.log.warn(`${this.id}: heartbeat failed: ${err.message}`);
      return null;
    }
  }

  /**
   * After this worker's beat: register again when it holds no lease (`alive` false); a busy
   * worker also promotes (protocol.md 14.3 (2)) unless `promote` is false (WorkerProcess
   * promotes once per beat for all its workers).
   */
  async afterBeat(alive, { promote = true } = {}) {
    try {
      if (this.stopping) return;
      if (!alive) {
        // We were recovered as dead: our held job is gone, so its outcome must not be settled.
        this.log.warn(`${this.id}: recovered as dead by a peer (lease lapsed); registering again`);
        await this.registerSelf();
        return;
      }
      // protocol.md 14.3 (2): a worker busy with a job still promotes once per beat.
      if (promote && this.current && this.promoter) await this.promote({ remember: false });
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
    if (remember) {
      this.nextDueAt = done.nextDueInMs === null ? null : Date.now() + done.nextDueInMs;
      this.nextDueMs = done.nextDueMs;
    }
    return done.moved > 0 || done.fired > 0;
  }

  /** Settles a finished job if any, then unregister.lua mode self. Bounded in time. */
  async leave() {
    const work = async () => {
      try {
        if (this.pending.op !== 'none') await this.callWork([]);
      } catch (err) {
        this.log.warn(`${this.id}: could not settle the last job: ${err.message}`);
      }
      const r = await this.membership.leave();
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
  async callWork(queues) {
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
        ],
        noSettleQueue: [k.workerRecord(id), k.workerRecord(id)],
      };
    }
    if (this.queueKeys?.list !== queues) {
      this.queueKeys = { list: queues, keys: [...queues.map((q) => k.queue(q)), ...queues.map((q) => k.wake(q))] };
    }
    // KEYS[12..13]: op crash pushes the job back to its own queue; any other op pushes nowhere.
    const settleKeys = p.op === 'crash' ? [k.queue(p.queue), k.wake(p.queue)] : this.workKeys.noSettleQueue;
    const keys = [...this.workKeys.fixed, ...settleKeys, ...this.queueKeys.keys];
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
        this.resync = true; // the call may have run: see callWork()
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
    const idle = this.options.shared?.idle;
    idle?.unpark(this); // a parked worker loops again (pause, resume, stop)
    if (idle?.watcher === this) idle.dropConnection(); // the watcher's call on the shared connection ends
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
    const idle = this.options.shared?.idle;
    if (idle && !controlOnly) return this.idleShared(idle);
    const timeoutMs = await this.idleTimeout(controlOnly);
    if (timeoutMs === null) return;
    const control = this.k.control(this.id);
    const res = await this.blpop([control, ...this.wakeKeys(controlOnly)], timeoutMs);
    this.timedOut = !res && !controlOnly;
    if (res && res[0] === control) this.command(res[1]);
    if (this.wildcard) await this.untilStopped(this.refreshQueues());
  }

  /**
   * Idle in a process with an IdleDispatcher (lib/idle.js): park while another worker watches,
   * else watch for every parked one. Leaves to reserve on a wake marker (handing the watch on),
   * on the timeout (keeping it), or when woken from the park.
   */
  async idleShared(idle) {
    if (!idle.claim(this)) {
      try {
        await this.untilStopped(idle.park(this));
      } finally {
        idle.unpark(this);
      }
      if (this.wildcard && !this.stopping) await this.untilStopped(this.refreshQueues());
      return;
    }
    let timeoutMs = await this.idleTimeout(false);
    if (timeoutMs === null) return;
    const deadline = Date.now() + timeoutMs;
    const control = this.k.control(this.id);
    try {
      for (;;) {
        await this.blockConnectionId(idle); // before the keys: a park from here on unblocks this call
        const keys = [control, ...idle.parkedControls(this.k), ...this.wakeKeys(false)];
        idle.rearm = false;
        const res = await this.blpop(keys, timeoutMs, idle);
        if (res && res[0] === control) this.command(res[1]);
        else if (res && idle.deliver(res[0], res[1], this.k)) { /* a parked worker's command */ } else if (res) {
          idle.release(this); // a wake marker: reserve, and let a parked worker watch meanwhile
          break;
        } else if (!idle.rearm) {
          this.timedOut = true; // the timeout: look again (quietly, 16.3), still watching
          break;
        }
        timeoutMs = deadline - Date.now();
        if (timeoutMs < 1 || this.stopping || this.paused) break;
      }
    } catch (err) {
      idle.release(this);
      throw err;
    }
    if (this.paused || this.stopping) idle.release(this);
    if (this.wildcard) await this.untilStopped(this.refreshQueues());
  }

  /**
   * The quiet look after a block that timed out (protocol.md 16.3): true when no queue of this
   * worker holds a job (one EXISTS) and nothing is due for promotion: no due time has come and
   * no delayed bucket earlier than the known next due time was stored without a marker (one
   * ZRANGE). Then work.lua and promote.lua would find nothing.
   */
  async nothingNew() {
    this.timedOut = false;
    const k = this.k;
    if (this.queueList.length && (await this.cmd.exists(...this.queueList.map((q) => k.queue(q))))) return false;
    if (!this.promoter) return true;
    if (this.nextDueAt !== null && Date.now() >= this.nextDueAt - LOCAL_WAIT_MS) return false;
    const earliest = await this.cmd.zrange(k.delayedSchedule(), 0, 0, 'WITHSCORES');
    return earliest.length === 0 || (this.nextDueMs >= 0 && this.nextDueMs <= Number(earliest[1]) * 1000);
  }

  /** The wake markers an idle worker blocks on after its control list (none when paused). */
  wakeKeys(controlOnly) {
    if (controlOnly) return [];
    const k = this.k;
    const keys = this.queueList.map((q) => k.wake(q));
    if (this.wildcard) keys.push(k.wakeNewQueue());
    if (this.promoter) keys.push(k.wakeSchedule());
    return keys;
  }

  /**
   * The block timeout in ms (protocol.md 8.3, 14.3), or null when the next due time is so close
   * that it was waited for here instead.
   */
  async idleTimeout(controlOnly) {
    let timeoutMs = 2 * this.options.blockTimeoutMs; // protocol.md 16.3: a quiet idle worker's longest block
    if (!controlOnly && this.promoter && this.nextDueAt !== null) {
      // protocol.md 14.3: wake when the next job falls due; Redis times a blocked client out on
      // its event-loop tick (up to 100 ms late), so the last moments are waited for here.
      const dueIn = Math.max(1, this.nextDueAt - Date.now());
      if (dueIn < LOCAL_WAIT_MS && dueIn <= timeoutMs) {
        this.nextDueAt = null;
        await this.sleepUnlessStopped(dueIn);
        return null;
      }
      timeoutMs = Math.min(timeoutMs, Math.max(1, dueIn - LOCAL_WAIT_MS));
    }
    return timeoutMs;
  }

  /**
   * The blocking connection: with `idle` (lib/idle.js) the one its watchers share, else this
   * worker's own (a paused worker, or a process of one worker).
   */
  blockConnection(idle = null) {
    const open = () => connect(this.options.redisUrl, { onError: this.onRedisError });
    if (idle) return idle.connection(open);
    if (!this.block) this.block = open();
    return this.block;
  }

  /** The CLIENT ID of the shared blocking connection (asked once per connection). */
  async blockConnectionId(idle) {
    const b = this.blockConnection(idle);
    if (b.jobwireId === undefined) b.jobwireId = await this.untilStopped(b.client('ID'));
    return b.jobwireId;
  }

  /**
   * BLPOP `keys` on the blocking connection; with `idle`, on the watchers' shared one, and
   * publishing its CLIENT ID while it blocks so that a worker parking meanwhile can unblock it.
   */
  async blpop(keys, timeoutMs, idle = null) {
    const block = this.blockConnection(idle);
    // closeBlock() interrupts the wait: disconnecting alone does not settle a BLPOP that sits in
    // ioredis's offline queue while Redis is unreachable.
    const interrupted = new Promise((resolve, reject) => { this.interruptBlock = () => reject(new Stopped()); });
    try {
      const call = block.blpop(...keys, (timeoutMs / 1000).toFixed(3));
      if (idle) idle.blockedId = block.jobwireId;
      return await Promise.race([call, interrupted]);
    } catch (err) {
      const current = idle ? idle.conn : this.block;
      if (block !== current || this.stopping) throw new Stopped(); // interrupted on purpose
      throw err;
    } finally {
      if (idle) idle.blockedId = null;
    }
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
}

Object.assign(Worker.prototype, jobRunning); // running.js: runJob, runInChild, retryOrFail, fail
