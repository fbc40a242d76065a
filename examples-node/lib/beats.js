// The beat timer of a worker, or of the N workers of a process (protocol.md 7.6 and 16.2).
//
// While some worker it beats for holds a job, it fires every heartbeat-ms (a busy worker also
// promotes from its beat, 14.3). While none does (all idle or paused), a quiet idle worker beats
// at the idle beat period instead, but no later than the moment the earliest lease of another
// worker lapses (the renew reply's next_lapse_ms), so a dead peer is still recovered when its
// lease lapses. A job that starts meanwhile pulls the next beat in (busyNow()).

/** The idle beat period of protocol.md 16.2: max(heartbeat, min(2 x heartbeat, lease / 3)). */
export function idleBeatMs(heartbeatMs, leaseMs) {
  return Math.max(heartbeatMs, Math.min(2 * heartbeatMs, Math.floor(leaseMs / 3)));
}

export class BeatTimer {
  /**
   * @param {object} o
   * @param {number} o.heartbeatMs
   * @param {number} o.leaseMs
   * @param {() => Promise<number|null>} o.beat  one beat; resolves to next_lapse_ms (null: none)
   * @param {() => boolean} o.busy               true while some worker holds a job
   */
  constructor({ heartbeatMs, leaseMs, beat, busy }) {
    Object.assign(this, { heartbeatMs, idleMs: idleBeatMs(heartbeatMs, leaseMs), beat, busy });
    this.timer = null;
    this.lastBeat = Date.now();
    this.dueAt = null;
    this.stopped = false;
    this.beating = null; // the beat in progress, if any
  }

  /** The first beat heartbeat-ms after registering. */
  start() {
    this.lastBeat = Date.now();
    this.arm(this.heartbeatMs);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** A job started: the next beat comes heartbeat-ms after the last one at the latest. */
  busyNow() {
    if (this.beating || this.stopped || this.dueAt === null) return;
    const busyDue = this.lastBeat + this.heartbeatMs;
    if (busyDue < this.dueAt) this.arm(busyDue - Date.now());
  }

  arm(delayMs) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const wait = Math.max(0, delayMs);
    this.dueAt = Date.now() + wait;
    this.timer = setTimeout(() => this.fire(), wait);
  }

  async fire() {
    this.timer = null;
    this.dueAt = null;
    this.lastBeat = Date.now();
    let nextLapseMs = null;
    try {
      this.beating = this.beat();
      nextLapseMs = await this.beating;
    } catch {
      nextLapseMs = null; // beat() reports its own failures; the next beat comes on time anyway
    } finally {
      this.beating = null;
    }
    if (this.busy()) return this.arm(this.lastBeat + this.heartbeatMs - Date.now());
    const idle = nextLapseMs === null ? this.idleMs : Math.min(this.idleMs, nextLapseMs + 10);
    this.arm(this.lastBeat + Math.max(10, idle) - Date.now());
  }
}
