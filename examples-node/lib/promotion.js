// What every promoting worker does (protocol.md 14.3 and 14.5): move due delayed jobs and due
// retries onto their queues with promote.lua, and fire due recurring schedules with fire.lua.
// There is no leader: any number of workers run this at once; the scripts make each move and
// each fire happen once.
import { failedAt } from './util.js';
import { validateDefinition, decide, fireJobId, firePayload, parseDefinition } from './schedule.js';

export const LIMIT = 100; // items per promote.lua call (protocol.md 14.8)
const ROUNDS = 10; // calls per pass at most, so that a backlog cannot starve the worker's jobs

export class Promoter {
  /** `fireSchedules`: also fire due schedules (--scheduler all). */
  constructor({ keys, scripts, workerId, maxPayloadBytes, fireSchedules, log }) {
    Object.assign(this, { k: keys, scripts, workerId, maxPayloadBytes, fireSchedules, log });
  }

  /**
   * promote.lua until nothing more is due (at most ROUNDS calls), firing due schedules.
   * Returns {moved, malformed, fired, nextDueInMs (null: nothing waits), nextDueMs (Redis time; -1)}.
   */
  async run(redis) {
    const k = this.k;
    const keys = [k.delayedSchedule(), k.queues(), k.wakeNewQueue(), k.failed(), k.retrySet(),
      this.fireSchedules ? k.schedules() : k.delayedSchedule()];
    const result = { moved: 0, malformed: 0, fired: 0, nextDueInMs: null, nextDueMs: -1 };
    for (let round = 0; round < ROUNDS; round++) {
      const reply = await this.scripts.call(redis, 'promote', keys, [k.prefix, LIMIT, failedAt(), this.workerId,
        this.maxPayloadBytes, this.fireSchedules ? '1' : '0']);
      const [moved, malformed, more, nowMs, nextDue] = reply.slice(0, 5).map(Number);
      result.moved += moved;
      result.malformed += malformed;
      const due = reply.slice(5);
      for (let i = 0; i < due.length; i += 2) result.fired += await this.fire(redis, String(due[i]), String(due[i + 1]), nowMs);
      result.nextDueInMs = nextDue < 0 ? null : Math.max(1, nextDue - nowMs);
      result.nextDueMs = nextDue; // on Redis's clock, for the quiet look (protocol.md 16.3)
      if (!more && due.length === 0) break;
    }
    if (result.malformed) {
      this.log.warn(`${this.workerId}: ${result.malformed} delayed item(s) could not be promoted; they are in the failed list`);
    }
    return result;
  }

  /**
   * One due schedule (protocol.md 14.5); 1 when a job was enqueued. `score` is the next fire
   * time exactly as Redis wrote it: fire.lua compares it byte for byte.
   */
  async fire(redis, name, score, nowMs) {
    const k = this.k;
    const raw = (await redis.hget(k.schedule(name), 'definition')) ?? '';
    const base = [name, score, raw];
    const other = [k.schedules(), k.schedule(name), k.schedules(), k.schedules(), k.schedules(), k.schedules()];
    let definition;
    let decision;
    let payload = '';
    try {
      const nextMs = Number(score);
      if (!Number.isSafeInteger(nextMs)) throw new Error(`next fire time ${score} is not a whole number of ms`);
      if (raw === '') throw new Error('it has no definition');
      try {
        definition = validateDefinition(parseDefinition(raw));
      } catch (err) {
        throw new Error(err instanceof SyntaxError ? `definition is not JSON: ${err.message}` : err.message, { cause: err });
      }
      decision = decide(definition, nextMs, nowMs);
      if (decision.nextMs === null) throw new Error(`${JSON.stringify(definition.cron)} never fires again`);
      if (decision.fireMs !== null) payload = firePayload(name, definition, decision.fireMs);
    } catch (err) {
      this.log.warn(`${this.workerId}: schedule ${name} is broken: ${err.message}`);
      await this.scripts.call(redis, 'fire', other, [...base, 'error', '', '', 0, '', `schedule ${name}: ${err.message}`, '', '']);
      return 0;
    }
    const missedAt = decision.lastMissedMs === null ? '' : decision.lastMissedMs;
    if (decision.missed) {
      this.log.warn(`${this.workerId}: schedule ${name} missed ${decision.missed} fire time(s), the latest at ${decision.lastMissedMs} ms`);
    }
    if (decision.fireMs === null) {
      await this.scripts.call(redis, 'fire', other, [...base, 'miss', decision.nextMs, '', decision.missed, missedAt, '', '', '']);
      return 0;
    }
    const q = definition.queue;
    const acted = await this.scripts.call(redis, 'fire', [k.schedules(), k.schedule(name), k.queues(), k.queue(q), k.wake(q), k.wakeNewQueue()],
      [...base, 'fire', decision.nextMs, decision.fireMs, decision.missed, missedAt, payload, q, fireJobId(name, decision.fireMs)]);
    return Number(acted) === 1 ? 1 : 0;
  }
}
