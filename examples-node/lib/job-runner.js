// The fork runner: a worker's jobs run in a child process of its own (lib/job-child.js), one per
// worker slot, so that the worker can end a job that hangs (SIGKILL), as Python and C do with a
// child per job (protocol.md 7.4, 7.5).
//
// Why a child process per slot, not per job or worker_threads:
// - a process can always be ended: SIGKILL stops a job stuck in a loop, in native code or in a
//   blocking system call, which Worker#terminate() cannot promise;
// - a job that ends its process (process.exit, SIGKILL, an out-of-memory abort) kills only the
//   child: the master survives and settles it as op `crash`, so deaths and poison jobs are counted
//   at once, as in a fork-per-job worker, instead of after a lease;
// - Node cannot fork(): a process per job would pay a whole Node start (tens of ms) per job; a
//   child per slot starts once and is replaced only after a kill or a crash.
// A child never outlives its master: it is started through setpriv --pdeathsig KILL (util-linux),
// and it also exits when the IPC channel closes.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { backoffMs, sleep } from './util.js';

const CHILD = fileURLToPath(new URL('./job-child.js', import.meta.url));
const STOP_WAIT_MS = 2000;

let setprivPath;
/** The setpriv binary if it can set the parent-death signal here, else null (checked once). */
export function setpriv() {
  if (setprivPath === undefined) {
    const done = spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' });
    setprivPath = done.status === 0 ? 'setpriv' : null;
  }
  return setprivPath;
}

/** Signal names for crash reasons: "child 4242 killed by signal 9 (SIGKILL)", as Python and C write. */
const SIGNUMS = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

export function exitReason(pid, code, signal) {
  if (signal) return `child ${pid} killed by signal ${SIGNUMS[signal] ?? '?'} (${signal})`;
  return `child ${pid} exited with status ${code} without a result`;
}

export class ChildRunner {
  /**
   * @param {object} o
   * @param {string[]} o.modules  module URLs or specifiers the child imports; each may export register(target)
   * @param {string} o.redisUrl, o.namespace, o.workerId  for the job context in the child
   * @param {object} o.log
   */
  constructor(o) {
    this.o = o;
    this.log = o.log;
    this.child = null;
    this.ready = null; // a promise of the ready child
    this.busy = null; // {seq, resolve, killedBy, timer}
    this.seq = 0;
    this.stopping = false;
    this.spawns = 0;
    this.waiting = null; // {killedBy} while run() waits for the child to be ready
  }

  /** Starts the child; resolves once it has loaded the job modules. Rejects if it cannot. */
  start() {
    this.ready ??= this.spawnChild();
    return this.ready;
  }

  spawnChild() {
    const config = JSON.stringify({
      modules: this.o.modules ?? [], redisUrl: this.o.redisUrl, namespace: this.o.namespace,
      workerId: this.o.workerId, logLevel: process.env.JOBWIRE_LOG_LEVEL,
    });
    const node = [...process.execArgv, CHILD, config];
    const wrapper = setpriv();
    if (!wrapper && this.spawns === 0) {
      this.log.warn('setpriv (util-linux) not found: a job child blocked in a loop may outlive a SIGKILLed worker');
    }
    const [cmd, args] = wrapper ? [wrapper, ['--pdeathsig', 'KILL', '--', process.execPath, ...node]] : [process.execPath, node];
    this.spawns += 1;
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.child = child;
    return new Promise((resolve, reject) => {
      child.on('message', (msg) => {
        if (msg?.type === 'ready') {
          child.wasReady = true;
          resolve(child);
        }
        else if (msg?.type === 'fatal') reject(new Error(msg.error));
        else if (msg?.type === 'done') this.settle(child, msg);
      });
      child.on('error', (err) => reject(new Error(`cannot start the job child: ${err.message}`)));
      // 'close' comes after the exit and after every IPC message was delivered, so a result
      // the job reported before it died is seen first (and stands).
      child.on('close', (code, signal) => {
        const err = new Error(`the job child exited before it was ready (${exitReason(child.pid, code, signal)})`);
        err.killed = signal !== null; // killed from outside: not a sign of a broken set-up
        reject(err);
        this.onClose(child, code, signal);
      });
    });
  }

  /** A reply from the child: the job's outcome stands, whatever kill was requested after it. */
  settle(child, msg) {
    const b = this.busy;
    if (!b || b.seq !== msg.seq || b.child !== child) return;
    this.finish({ ok: msg.ok, error: msg.error, notRetried: msg.notRetried === true, pid: child.pid });
  }

  finish(outcome) {
    const b = this.busy;
    this.busy = null;
    clearTimeout(b.timer);
    b.resolve(outcome);
  }

  onClose(child, code, signal) {
    if (this.child === child) {
      this.child = null;
      this.ready = null;
    }
    const b = this.busy;
    if (b && b.child === child) {
      if (b.killedBy) this.finish({ killedBy: b.killedBy, pid: child.pid });
      else this.finish({ crash: exitReason(child.pid, code, signal), pid: child.pid });
    } else if (!this.stopping) {
      this.log.warn(`job child ${child.pid} ended while idle (${exitReason(child.pid, code, signal)}); starting another`);
    }
    // A child that worked is replaced at once, so the next job does not wait for a Node start;
    // one that never got ready is retried by the next run(), with backoff.
    if (!this.stopping && child.wasReady) this.start().catch(() => {});
  }

  /**
   * Runs one job in the child. Resolves with {ok, error} from the job, {killedBy, pid} after
   * kill(), or {crash: reason, pid} when the child died without a result.
   */
  async run(job, { timeoutMs = 0 } = {}) {
    // A job may be reserved before the child is ready (the worker does not wait for it to go
    // idle): a kill meanwhile (SIGTERM, SIGUSR1, a kill command) applies to this job, which then
    // never starts.
    const waiting = { killedBy: null };
    this.waiting = waiting;
    const child = await this.readyChild().finally(() => { this.waiting = null; });
    if (waiting.killedBy) return { killedBy: waiting.killedBy, pid: child.pid };
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.busy = { seq, resolve, child, killedBy: null, timer: null };
      if (timeoutMs > 0) this.busy.timer = setTimeout(() => this.kill('timeout'), timeoutMs);
      child.send({ type: 'run', seq, ...job });
    });
  }

  /** The child, started again (with the protocol's backoff) after a crash or a kill. */
  async readyChild() {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.start();
      } catch (err) {
        if (this.stopping) throw err;
        // The first start failing by itself is a configuration error (a module that cannot load);
        // a child killed by a signal (an operator, the OOM killer) is started again.
        if (this.spawns <= 1 && !err.killed) throw err;
        this.ready = null;
        const delay = backoffMs(attempt);
        this.log.warn(`${err.message}; starting another in ${delay} ms`);
        await sleep(delay);
      }
    }
  }

  /** SIGKILLs the child if it is running a job; `reason` comes back as outcome.killedBy. */
  kill(reason) {
    const b = this.busy;
    if (!b && this.waiting && !this.waiting.killedBy) {
      this.waiting.killedBy = reason; // the job waiting for the child (run())
      return true;
    }
    if (!b || b.killedBy) return false;
    b.killedBy = reason;
    b.child.kill('SIGKILL');
    return true;
  }

  get runningPid() {
    return this.busy?.child.pid ?? null;
  }

  /** Ends the child (a running job is killed) and waits for it, briefly. */
  async stop() {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    let timer;
    const closed = new Promise((resolve) => {
      child.once('close', resolve);
      timer = setTimeout(resolve, STOP_WAIT_MS);
    });
    child.kill('SIGKILL');
    await closed;
    clearTimeout(timer);
  }
}
