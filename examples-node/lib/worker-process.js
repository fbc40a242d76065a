// N protocol workers in one Node process: the shared handler registry, the signals of
// protocol.md 7.5 and the process title (7.8).
import { EventEmitter } from 'node:events';
import { DEFAULTS } from './options.js';
import { stderrLogger } from './log.js';
import { parseQueues } from './queues.js';
import { Worker } from './worker.js';

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
