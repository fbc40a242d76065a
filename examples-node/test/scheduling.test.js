// Protocol 1.1 end to end against a private redis-server: delayed jobs (client and promotion by
// our worker), retries with history and exhaustion, schedules set / fired / removed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, spawnWorker, killProc, echoes, failures, waitFor } from './helpers.js';
import { Client } from '../lib/client.js';

let server;
let client;
before(async () => {
  server = await startRedis();
  client = new Client({ redisUrl: server.url });
}, { timeout: 30000 });
after(async () => {
  await client?.close();
  await server?.stop();
}, { timeout: 30000 });

test('enqueueAt stores resque-scheduler\'s layout; list by time; remove by id', { timeout: 60000 }, async () => {
  const r = server.redis;
  const at = Date.now() + 3600_000;
  const a = await client.enqueueAt('later', 'Mail', [7], at);
  const b = await client.enqueueIn('later', 'Mail', [8], 7200_000);
  const ts = String(Math.ceil(at / 1000));
  const [item] = await r.lrange(`resque:delayed:${ts}`, 0, -1);
  const doc = JSON.parse(item);
  assert.deepEqual(Object.keys(doc).slice(0, 3), ['class', 'args', 'queue']);
  assert.equal(doc.queue, 'later');
  assert.equal(doc.id, a);
  assert.equal(doc.scheduled_for_ms, at);
  assert.deepEqual(await r.zrange('resque:delayed_queue_schedule', 0, 0), [ts]);
  assert.deepEqual(await r.smembers(`resque:timestamps:${item}`), [`delayed:${ts}`]);
  assert.deepEqual((await client.scheduled()).map((e) => e.name), [a, b]);
  assert.equal(await client.removeScheduled(a), true);
  assert.equal(await client.removeScheduled(a), false);
  assert.deepEqual((await client.scheduled()).map((e) => e.name), [b]);
  assert.equal(await r.exists(`resque:delayed:${ts}`, `resque:timestamps:${item}`), 0);
  assert.equal(await client.removeScheduled(b, 'enqueue'), true);
  assert.equal(await r.llen('resque:queue:later'), 1);
  const now = await client.enqueueAt('later', 'Mail', [9], Date.now() - 1);
  assert.equal(JSON.parse((await r.lrange('resque:queue:later', -1, -1))[0]).id, now, 'a past time enqueues at once');
  await assert.rejects(client.enqueueAt('later', '', [], at + 1), /invalid job payload/);
  assert.equal((await client.scheduled()).length, 0, 'an invalid job stores nothing');
});

test('a worker promotes a delayed job on time and retries a flaky one with its history', { timeout: 60000 }, async () => {
  const r = server.redis;
  await r.flushdb();
  const w = spawnWorker(server.url, 'sq');
  try {
    await waitFor(async () => (await r.scard('resque:workers')) === 1, { what: 'worker registered' });
    const due = Date.now() + 1200;
    const late = await client.enqueueAt('sq', 'jobwire.Echo', ['late'], due);
    const policy = { max_attempts: 3, backoff: 'fixed', delay_ms: 200, jitter: 0 };
    const flaky = await client.enqueue('sq', 'jobwire.Flaky', [5], { extra: { retry: policy } });
    const once = await client.enqueue('sq', 'jobwire.Flaky', [1], { extra: { retry: policy } });
    await waitFor(async () => (await failures(r)).length === 1 && (await echoes(r)).length === 6, { what: 'runs', timeout: 15000 });
    const runs = await echoes(r);
    const lateRun = runs.find((e) => e.id === late);
    assert.ok(lateRun, 'the delayed job ran');
    assert.deepEqual(runs.filter((e) => e.id === flaky).map((e) => e.attempt), [1, 2, 3]);
    assert.deepEqual(runs.filter((e) => e.id === once).map((e) => e.attempt), [1, 2]);
    const [rec] = await failures(r);
    assert.equal(rec.payload.id, flaky, 'an exhausted job lands in failed, keeping its id');
    assert.equal(rec.error, 'flaky attempt 3');
    assert.deepEqual(rec.payload.attempts.map((a) => [a.attempt, a.error, a.delay_ms]), [[1, 'flaky attempt 1', 200], [2, 'flaky attempt 2', 200]]);
    assert.deepEqual(Object.keys(rec.payload.attempts[0]), ['attempt', 'failed_at_ms', 'exception', 'error', 'worker', 'queue', 'delay_ms']);
    assert.equal(await r.zcard('resque:jobwire:retry'), 0);
    assert.equal(await r.zcard('resque:delayed_queue_schedule'), 0);
  } finally {
    await killProc(w, 'SIGTERM');
  }
});

/** Ids of the cron queue's jobs: run (echoes), queued and held by a worker; or, with
 * withRun false, only those not yet run (queued or held). */
async function cronJobIds(r, { withRun = true } = {}) {
  const ids = new Set(withRun ? (await echoes(r)).map((e) => e.id) : []);
  for (const raw of await r.lrange('resque:queue:cron', 0, -1)) ids.add(JSON.parse(raw).id);
  for (const key of await r.keys('resque:jobwire:inflight:*')) {
    const raw = await r.hget(key, 'payload');
    if (raw) ids.add(JSON.parse(raw).id);
  }
  return ids;
}

test('a schedule fires once per fire time with two workers; remove stops it', { timeout: 60000 }, async () => {
  const r = server.redis;
  await r.flushdb();
  const ws = [spawnWorker(server.url, 'cron'), spawnWorker(server.url, 'cron')];
  try {
    const before = Date.now();
    const next = await client.setSchedule('tick', { every_ms: 1000, queue: 'cron', class: 'jobwire.Echo', args: ['t'] });
    assert.ok(next > before && next % 1000 === 0, `next fire time ${next} after ${before}`);
    const [listed] = await client.schedules();
    assert.equal(listed.name, 'tick');
    await waitFor(async () => (await echoes(r)).length >= 3, { what: 'three fires', timeout: 15000 });
    assert.equal(await client.removeSchedule('tick'), true);
    // Every job the schedule made by now: run, queued or held. On a loaded machine fires made
    // before the remove may still be queued, so "no fire after remove" is "no job outside this set".
    const made = await cronJobIds(r);
    await new Promise((res) => setTimeout(res, 2500)); // past two more fire times
    await waitFor(async () => (await cronJobIds(r, { withRun: false })).size === 0, { what: 'queue and workers empty', timeout: 15000 });
    const ids = (await echoes(r)).map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `each fire time once: ${ids}`);
    assert.deepEqual(ids.filter((id) => !made.has(id)), [], `no fires after remove (made before it: ${[...made]})`);
    await assert.rejects(client.setSchedule('bad', { cron: '0 0 30 2 *', queue: 'cron', class: 'X' }), /never fires/);
    await client.setSchedule('manual', { cron: '0 3 * * *', queue: 'cron', class: 'jobwire.Echo', args: ['m'] });
    const id = await client.runScheduleNow('manual');
    await waitFor(async () => (await echoes(r)).some((e) => e.id === id), { what: 'run now' });
  } finally {
    await Promise.all(ws.map((w) => killProc(w, 'SIGTERM')));
  }
});
