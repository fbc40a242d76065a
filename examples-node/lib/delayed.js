// Delayed jobs on the client side (protocol.md section 14.2): store a job for later in
// resque-scheduler's layout with delay.lua, list the waiting ones by time, remove one or run it
// now with unschedule.lua. Also the retry set's listing (section 14.4).
import { createHash } from 'node:crypto';

const PAGE = 100;

/** The bucket of a job due at `atMs`: whole Unix seconds, rounded up (never early). */
export function bucketOf(atMs) {
  return Math.ceil(atMs / 1000);
}

/**
 * The delayed item: the payload's members with "queue" as the third (after class and args) and
 * "scheduled_for_ms" after the others. `payload` is the compact JSON built for enqueue.
 */
export function delayedItem(payload, queue, atMs) {
  // payload starts {"class":..,"args":..,"id":.. (buildPayload's order); splice queue in after
  // args without re-encoding anything.
  const idAt = payload.indexOf(',"id":');
  if (!payload.startsWith('{"class":') || idAt < 0) throw new Error('payload not built by buildPayload');
  return `${payload.slice(0, idAt)},"queue":${JSON.stringify(queue)}${payload.slice(idAt, -1)},"scheduled_for_ms":${atMs}}`;
}

/** The name of an item in listings: its id, else sha1:<hex of its bytes>. */
export function itemName(raw) {
  try {
    const doc = JSON.parse(raw);
    if (doc && typeof doc.id === 'string' && doc.id !== '') return doc.id;
  } catch { /* not JSON: named by its bytes */ }
  return `sha1:${createHash('sha1').update(Buffer.from(raw, 'utf8')).digest('hex')}`;
}

/** Every delayed item, by bucket then list order: {ts, item, name, queue}. */
export async function listDelayed(redis, k) {
  const out = [];
  let low = '-inf';
  for (;;) {
    const buckets = await redis.zrangebyscore(k.delayedSchedule(), low, '+inf', 'LIMIT', 0, PAGE);
    for (const ts of buckets) {
      for (let start = 0; ; start += PAGE) {
        const items = await redis.lrange(k.delayedBucket(ts), start, start + PAGE - 1);
        for (const item of items) {
          let queue = null;
          try { queue = JSON.parse(item).queue ?? null; } catch { /* malformed: listed as it is */ }
          out.push({ ts: Number(ts), item, name: itemName(item), queue });
        }
        if (items.length < PAGE) break;
      }
    }
    if (buckets.length < PAGE) return out;
    low = `(${buckets[buckets.length - 1]}`;
  }
}

/** Every waiting retry, by due time: {dueMs, member, queue, payload, name}. */
export async function listRetrying(redis, k) {
  const flat = await redis.zrange(k.retrySet(), 0, -1, 'WITHSCORES');
  const out = [];
  for (let i = 0; i < flat.length; i += 2) {
    const member = flat[i];
    const space = member.indexOf(' ');
    const payload = member.slice(space + 1);
    out.push({ dueMs: Number(flat[i + 1]), member, queue: member.slice(0, space), payload, name: itemName(payload) });
  }
  return out;
}

/** unschedule.lua on one delayed item; mode "remove" or "enqueue". 1 found, 0 gone first. */
export async function unscheduleDelayed(redis, k, scripts, { ts, item, queue }, mode) {
  const q = queue ?? '';
  const enqueue = mode === 'enqueue' && q !== '';
  const keys = [k.delayedSchedule(), k.delayedBucket(ts), k.delayedTimestamps(item), k.queues(),
    enqueue ? k.queue(q) : k.delayedSchedule(), enqueue ? k.wake(q) : k.delayedSchedule(), k.wakeNewQueue()];
  return scripts.call(redis, 'unschedule', keys, ['delayed', String(ts), item, enqueue ? 'enqueue' : 'remove', q]);
}

/** unschedule.lua on one waiting retry; mode "remove" or "enqueue". */
export async function unscheduleRetry(redis, k, scripts, { member, queue, payload }, mode) {
  const enqueue = mode === 'enqueue';
  const keys = [k.retrySet(), k.retrySet(), k.retrySet(), k.queues(),
    enqueue ? k.queue(queue) : k.retrySet(), enqueue ? k.wake(queue) : k.retrySet(), k.wakeNewQueue()];
  return scripts.call(redis, 'unschedule', keys, ['retry', member, payload, mode, queue]);
}
