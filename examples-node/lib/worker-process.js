// N protocol workers in one Node process: the shared handler registry, the signals of
// protocol.md 7.5 and the process title (7.8), and what the N share (spec/rationale.md,
// "Node concurrency N"): one command connection, one beat timer and, for N > 1, one blocking call
// for the idle workers (lib/idle.js).
//
// Each of the N stays a protocol worker of its own (its id, lease, in-flight and working-on
// records, its own work.lua calls): sharing is below the protocol. One ioredis connection
// pipelines the N workers' commands on one socket (Redis runs each script atomically whatever
// the socket, and replies come back in order), so N workers cost one command socket, not N.
// The N beats are one heartbeat.lua call in mode renew (protocol.md 16.1), every heartbeat-ms
// while a worker is busy and at the quiet idle period otherwise (16.2, lib/beats.js); a busy
// worker's promotion pass (14.3 (2)) runs once per beat
// for the process, not once per busy worker (promote.lua moves each due job once whoever runs it).
import { EventEmitter } from 'node:events';
import { DEFAULTS } from './options.js';
import { stderrLogger } from './log.js';
import { parseQueues } from './queues.js';
import { Worker } from './worker.js';
import { connect } from './util.js';
import { isClusterUrl } from './cluster.js';
import { IdleDispatcher } from './idle.js';
import { BeatTimer } from './beats.js';

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
    this.redis = null; // the shared command connection, opened by run()
    this.shared = {}; // handed to each worker; run() sets shared.redis before they start
    // One blocking call for the idle workers (lib/idle.js); not on a cluster, where CLIENT
    // UNBLOCK would have to find the node that holds the watcher's connection.
    if (n > 1 && !isClusterUrl(o.redisUrl ?? '')) this.shared.idle = new IdleDispatcher({ log: this.log });
    for (let i = 1; i <= n; i++) {
      const w = new Worker({ ...o, handlers: this.handlers, logger: this.log, index: n === 1 ? undefined : i, shared: this.shared });
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
    this.redis = connect(this.options.redisUrl, { onError: (err) => this.log.debug(`redis: ${err.message}`) });
    this.shared.redis = this.redis;
    this.scheduleBeat();
    let results;
    try {
      results = await Promise.allSettled(this.workers.map((w) => w.run()));
    } finally {
      this.beats.stop();
      this.left = true;
      this.shared.idle?.dropConnection(); // the watchers' blocking connection (lib/idle.js)
      this.redis.disconnect();
    }
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The beats of every worker (lib/beats.js), the first heartbeat-ms after start (protocol.md 7.6). */
  scheduleBeat() {
    this.beats = new BeatTimer({
      heartbeatMs: this.options.heartbeatMs, leaseMs: this.options.leaseMs,
      beat: () => this.beatAll(), busy: () => this.workers.some((w) => w.current),
    });
    this.shared.beats = this.beats; // a worker that reserves a job pulls the next beat in
    this.beats.start();
  }

  /**
   * Beats every registered worker in one heartbeat.lua renew call (protocol.md 16.1), then, when
   * any is busy, one promotion pass for the process (protocol.md 14.3 (2)). Resolves to the
   * reply's next_lapse_ms (null: none seen, or the beat failed).
   */
  async beatAll() {
    const live = this.workers.filter((w) => w.registered && !w.stopping);
    if (!live.length) return null;
    let renewed;
    try {
      renewed = await live[0].membership.renew(live.slice(1).map((w) => w.id));
    } catch (err) {
      this.log.warn(`heartbeat failed: ${err.message}`);
      return null;
    }
    await Promise.all(live.map((w) => w.afterBeat(!renewed.unknown.includes(w.id), { promote: false })));
    const busy = live.find((w) => w.current && w.promoter && !w.stopping);
    if (!busy) return renewed.nextLapseMs;
    try {
      await busy.promote({ remember: false });
    } catch (err) {
      this.log.warn(`promotion during a beat failed: ${err.message}`);
    }
    return renewed.nextLapseMs;
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
