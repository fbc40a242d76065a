// One blocking call for the idle workers of a process (spec/rationale.md, "Node concurrency N").
//
// Of the N workers of a WorkerProcess that are idle (not paused), one at a time, the watcher,
// blocks (protocol.md 8.3) on its own control list, the control lists of the other idle ones
// (the parked) and the wake markers. A parked worker makes no Redis call at all: it waits until
// the watcher pops its control list (the command is handed to it) or a wake marker (it is woken
// to take the watch while the watcher reserves), or until it is paused or told to stop. So an
// idle process costs one BLPOP, one work.lua and one promotion pass per block timeout, not N.
// A worker that parks while the watcher blocks is not yet in that BLPOP's keys: the watcher is
// unblocked (CLIENT UNBLOCK, answered like a timeout) and blocks again with the new set.

export class IdleDispatcher {
  constructor({ log }) {
    this.log = log;
    this.watcher = null; // the worker whose blocking call watches for the parked ones
    this.parked = new Map(); // worker -> resolve() of its park
    this.blockedId = null; // CLIENT ID of the watcher's blocking connection while it blocks
    this.rearm = false; // the watcher's call was unblocked to take in a new parked worker
    this.conn = null; // the one blocking connection, used by whichever worker watches
  }

  /**
   * The watchers' blocking connection, opened by `open()` on first use. Only the watcher blocks
   * on it, one call at a time, so the watch passes between workers without a connection each
   * (N workers would otherwise open N blocking connections as the watch went round).
   */
  connection(open) {
    if (!this.conn) {
      const conn = open();
      conn.on('ready', () => { conn.jobwireId = undefined; }); // a new connection has a new CLIENT ID
      this.conn = conn;
    }
    return this.conn;
  }

  /** Drops the blocking connection: interrupts the watcher's call (pause, stop); the next watch opens one. */
  dropConnection() {
    const conn = this.conn;
    this.conn = null;
    if (conn) conn.disconnect();
  }

  /** True when `w` may block now (it is or becomes the watcher); else it should park(). */
  claim(w) {
    if (this.watcher === null || this.watcher === w) {
      this.watcher = w;
      return true;
    }
    return false;
  }

  /** Parks `w` until the watcher wakes it; tells the watcher to block again with w's control list. */
  park(w) {
    const woken = new Promise((resolve) => this.parked.set(w, resolve));
    this.unblockWatcher(w.cmd);
    return woken;
  }

  /** Wakes a parked worker (it loops again: reserves, or blocks on its own when paused). */
  unpark(w) {
    const resolve = this.parked.get(w);
    if (!resolve) return;
    this.parked.delete(w);
    resolve();
  }

  /** `w` stops watching (it reserved a job, paused, or is leaving): a parked worker takes over. */
  release(w) {
    if (this.watcher !== w) return;
    this.watcher = null;
    const next = this.parked.keys().next();
    if (!next.done) this.unpark(next.value);
  }

  /** The control lists the watcher blocks on for the parked workers. */
  parkedControls(k) {
    return [...this.parked.keys()].map((p) => k.control(p.id));
  }

  /** A popped control list of a parked worker: its command is handed over and it is woken. */
  deliver(key, text, k) {
    for (const p of this.parked.keys()) {
      if (k.control(p.id) !== key) continue;
      this.unpark(p);
      p.command(text);
      return true;
    }
    return false;
  }

  /**
   * Unblocks the watcher's BLPOP so that it blocks again with the current parked set. The
   * UNBLOCK travels on another socket and may arrive before the BLPOP blocks (reply 0): then it
   * is sent again while that call is still the watcher's.
   */
  unblockWatcher(redis, tries = 20) {
    const id = this.blockedId;
    if (id === null) return;
    this.rearm = true;
    redis.client('UNBLOCK', id).then((n) => {
      if (Number(n) === 0 && this.blockedId === id && tries > 1) {
        setTimeout(() => this.unblockWatcher(redis, tries - 1), 5);
      }
    }, (err) => this.log.debug(`CLIENT UNBLOCK ${id}: ${err.message}`));
  }
}
