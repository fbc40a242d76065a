// A worker id's membership of <ns>:workers: register, beat, leave, recover dead peers
// (protocol.md 7.3, 7.6; heartbeat.lua and unregister.lua, 8.1/8.5), as Python's
// jobwire/membership.py. A Worker keeps one for itself; anything else that must recover a dead
// worker (a test, a supervisor) can use one under its own id without a Worker.
import { specMajor } from './spec.js';
import { failedAt, startedAt, utcDay } from './util.js';

export const UNREGISTER_RETRIES = 10; // protocol.md 8.5: calls on "retry" before giving up (a later beat tries again)

export class Membership {
  /**
   * @param {object} o
   * @param {import('ioredis').Redis} o.redis  the connection for every call
   * @param {object} o.scripts                 lib/scripts.js
   * @param {object} o.keys                    lib/keys.js for the namespace
   * @param {string} o.id                      the worker id this membership is for
   * @param {number} o.leaseMs
   * @param {number} o.maxDeaths
   * @param {object} o.log
   */
  constructor({ redis, scripts, keys, id, leaseMs, maxDeaths, log }) {
    Object.assign(this, { redis, scripts, k: keys, id, leaseMs, maxDeaths, log });
    this.registeredOnce = false; // the predecessor check runs before the first register only
  }

  heartbeatKeys() {
    const k = this.k;
    return [k.workers(), k.heartbeats(), k.leases(), k.workerStarted(this.id), k.workerInfo(this.id), k.meta()];
  }

  /**
   * Joins <ns>:workers with the info hash `info` (an object of strings) and recovers the lapsed
   * peers the reply lists (protocol.md 7.6). Rejects with JOBWIRE_SPEC_MISMATCH on another major.
   */
  async register(info, now = new Date()) {
    if (!this.registeredOnce && (await this.redis.exists(this.k.inflight(this.id)))) {
      // A dead predecessor had this very id (same host and pid, e.g. pid 1 in a container):
      // recover its job as a death before registering, or a job that kills the whole
      // process would be handed back to us forever (protocol.md 7.3).
      const r = await this.unregister(this.id, 'dead');
      this.log.warn(`${this.id}: recovered the job of a dead worker with this id (${r[1]})`);
    }
    this.registeredOnce = true;
    const reply = await this.scripts.call(this.redis, 'heartbeat', this.heartbeatKeys(),
      [this.id, this.leaseMs, 'register', startedAt(now), specMajor(), ...Object.entries(info).flat()]);
    this.recoverAll(reply.slice(1));
  }

  /**
   * Renews the lease and recovers the lapsed peers the reply lists. False when this worker was
   * itself recovered as dead (it holds no lease): the caller must register again (protocol.md 7.6).
   */
  async beat() {
    const { unknown } = await this.renew([]);
    return unknown.length === 0;
  }

  /**
   * heartbeat.lua mode renew (protocol.md 16.1) for this id and `others` (the other workers of
   * the process, same lease) in one call; recovers the lapsed peers listed. Resolves to
   * {nextLapseMs (null: none seen), unknown: the given ids that hold no lease}.
   */
  async renew(others) {
    const reply = await this.scripts.call(this.redis, 'heartbeat', this.heartbeatKeys(),
      [this.id, this.leaseMs, 'renew', '', specMajor(), ...others]);
    const nextLapse = Number(reply[1]);
    const u = Number(reply[2]);
    this.recoverAll(reply.slice(3 + u));
    return { nextLapseMs: nextLapse < 0 ? null : nextLapse, unknown: reply.slice(3, 3 + u).map(String) };
  }

  /** Unregisters this worker (mode self: an unsettled job goes back to its queue, 7.3). */
  leave() {
    return this.unregister(this.id, 'self');
  }

  /** Recovers each lapsed peer in the background; a failure is logged (a later beat lists it again). */
  recoverAll(deadIds) {
    for (const dead of deadIds) {
      this.recover(dead).catch((err) => this.log.warn(`${this.id}: recovering ${dead}: ${err.message}`));
    }
  }

  /** Recovers a peer whose lease lapsed (protocol.md 7.6 / 8.6). */
  async recover(deadId, mode = 'expired') {
    const r = await this.unregister(deadId, mode);
    if (r[0] === 'done') this.log.info(`${this.id}: recovered dead worker ${deadId} (job: ${r[1]})`);
    return r;
  }

  /** unregister.lua for `workerId` in `mode`, re-reading the held job's queue on "retry". */
  async unregister(workerId, mode) {
    const k = this.k;
    let r;
    for (let attempt = 0; attempt < UNREGISTER_RETRIES; attempt++) {
      const q = await this.redis.hget(k.inflight(workerId), 'queue');
      const keys = [
        k.leases(), k.workers(), k.heartbeats(), k.workerRecord(workerId), k.workerStarted(workerId),
        k.inflight(workerId), k.statProcessedWorker(workerId), k.statFailedWorker(workerId),
        k.workerInfo(workerId), k.control(workerId), k.deaths(), k.failed(), k.statProcessed(),
        k.statFailed(), k.minutes(utcDay()),
        q ? k.queue(q) : k.inflight(workerId), q ? k.wake(q) : k.inflight(workerId),
      ];
      r = await this.scripts.call(this.redis, 'unregister', keys,
        [workerId, mode, q ?? '', failedAt(), this.maxDeaths, this.id]);
      if (r[0] !== 'retry') return r;
    }
    return r;
  }
}
