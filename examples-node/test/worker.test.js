// The worker library in-process, against a private redis-server.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { startRedis, waitFor, echoes, failures, sleep } from './helpers.js';
import { Client } from '../lib/client.js';
import { Worker, WorkerProcess, stderrLogger, describeError } from '../lib/worker.js';
import { registerConformanceJobs } from '../lib/conformance.js';
import { Membership } from '../lib/membership.js';
import { scripts } from '../lib/scripts.js';
import { keys } from '../lib/keys.js';

const quiet = stderrLogger('silent');
const FAILED_AT = /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} UTC$/;
let server;
let client;
let running = [];

before(async () => {
  server = await startRedis();
  client = new Client({ redisUrl: server.url });
}, { timeout: 30000 });
after(async () => {
  await client?.close();
  await server?.stop();
}, { timeout: 30000 });
afterEach(async () => {
  for (const { w, done } of running) {
    w.quit();
    await done;
  }
  running = [];
  await server.redis.flushdb();
}, { timeout: 30000 });

function startWorker(queues, options = {}) {
  const w = new Worker({
    queues, redisUrl: server.url, blockTimeoutMs: 200, heartbeatMs: 300, leaseMs: 1500, logger: quiet, ...options,
  });
  registerConformanceJobs(w);
  const done = w.run();
  running.push({ w, done });
  return w;
}

test('runs a job: echo record, stats counters, worker keys', { timeout: 60000 }, async () => {
  const r = server.redis;
  const w = startWorker('high,low');
  assert.equal(w.id, `${os.hostname()}:${process.pid}:high,low`);
  const id = await client.enqueue('low', 'jobwire.Echo', [1, 'two', 12345678901234567890n, -9223372036854775808n, 0.1, 2.5e-7, { k: [true, null] }, -0]);
  const [echo] = await waitFor(() => echoes(r).then((e) => e.length && e), { what: 'echo' });
  const rawEcho = (await r.lrange('resque:jobwire:conformance:echo', 0, 0))[0];
  assert.ok(rawEcho.includes('"args":[1,"two",12345678901234567890,-9223372036854775808,0.1,2.5e-7,{"k":[true,null]},-0.0]'), rawEcho);
  assert.deepEqual(Object.keys(echo), ['id', 'args', 'worker', 'queue', 'pid', 'impl']);
  assert.equal(echo.id, id);
  assert.equal(echo.worker, w.id);
  assert.equal(echo.queue, 'low');
  assert.equal(echo.pid, process.pid);
  assert.equal(echo.impl, 'node');
  await waitFor(async () => (await r.get('resque:stat:processed')) === '1', { what: 'processed' });
  assert.equal(await r.get(`resque:stat:processed:${w.id}`), '1');
  assert.equal(await r.get('resque:stat:failed'), null);
  const info = await r.hgetall(`resque:jobwire:worker:${w.id}`);
  assert.equal(info.impl, 'node');
  assert.equal(info.mode, 'inline');
  assert.equal(info.state, 'idle');
  assert.equal(info.queues, 'high,low');
  assert.equal(info.pid, String(process.pid));
  assert.match(info.spec, /^1\.\d+\.\d+$/);
  assert.ok(await r.sismember('resque:workers', w.id));
  assert.match(await r.hget('resque:workers:heartbeat', w.id), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
  assert.match(await r.get(`resque:worker:${w.id}:started`), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000$/);
  assert.ok(Number(await r.zscore('resque:jobwire:leases', w.id)) > Date.now());
  const minutes = await r.hgetall(`resque:jobwire:minutes:${new Date().toISOString().slice(0, 10)}`);
  assert.equal(Object.values(minutes).reduce((a, b) => a + Number(b), 0), 1);
});

test('failure record: key order, formats, raw payload bytes kept, counters', { timeout: 60000 }, async () => {
  const r = server.redis;
  const w = startWorker('q');
  // odd spacing, a float spelling, a huge integer and an unknown field must survive byte for byte
  const raw = '{"class":"jobwire.Fail", "args":["boom", 1.0, 123456789012345678901234567890],"extra":{"x":1e2}}';
  await r.rpush('resque:queue:q', raw);
  const [rec] = await waitFor(() => r.lrange('resque:failed', 0, -1).then((l) => l.length && l), { what: 'failure' });
  assert.ok(rec.includes(`"payload":${raw},"exception"`), rec);
  const f = JSON.parse(rec);
  assert.deepEqual(Object.keys(f), ['failed_at', 'payload', 'exception', 'error', 'backtrace', 'worker', 'queue']);
  assert.match(f.failed_at, FAILED_AT);
  assert.equal(f.exception, 'Error');
  assert.equal(f.error, 'boom');
  assert.ok(Array.isArray(f.backtrace) && f.backtrace.length > 0 && f.backtrace.every((l) => typeof l === 'string'));
  assert.equal(f.worker, w.id);
  assert.equal(f.queue, 'q');
  await waitFor(async () => (await r.get('resque:stat:failed')) === '1', { what: 'failed counter' });
  assert.equal(await r.get('resque:stat:processed'), '1');
  assert.equal(await r.get(`resque:stat:failed:${w.id}`), '1');
});

test('unknown class, non-Error throws, application handlers with a context', { timeout: 60000 }, async () => {
  const r = server.redis;
  const w = startWorker('q');
  const seen = [];
  w.register('App.Add', async function add(a, b) { seen.push({ sum: a + b, queue: this.queue, id: this.id, worker: this.worker }); });
  w.register('App.ThrowString', () => { throw 'plain string'; });
  w.register('App.ThrowUndefined', async () => { throw undefined; });
  const addId = await client.enqueue('q', 'App.Add', [2, 3]);
  await client.enqueue('q', 'No.Such', []);
  await client.enqueue('q', 'App.ThrowString', []);
  await client.enqueue('q', 'App.ThrowUndefined', []);
  const fs = await waitFor(() => failures(r).then((l) => l.length === 3 && l), { what: '3 failures' });
  assert.deepEqual(seen, [{ sum: 5, queue: 'q', id: addId, worker: w.id }]);
  assert.equal(fs[0].exception, 'jobwire.UnknownClass');
  assert.equal(fs[0].error, 'no handler registered for class "No.Such"');
  assert.deepEqual(fs[0].backtrace, []);
  assert.equal(fs[1].exception, 'Error');
  assert.equal(fs[1].error, 'non-Error value thrown: plain string');
  assert.equal(typeof fs[2].exception, 'string');
  assert.equal(typeof fs[2].error, 'string');
  assert.deepEqual(describeError(null), { exception: 'Error', error: 'non-Error value thrown: null', backtrace: [] });
});

test('bad payloads become failure records and the worker keeps going', { timeout: 60000 }, async () => {
  const r = server.redis;
  startWorker('q', { maxPayloadBytes: 16777216 });
  const big = `{"class":"jobwire.Echo","args":["${'x'.repeat(20 * 1024 * 1024)}"]}`;
  await r.rpush('resque:queue:q', 'not json {', '{"class":"jobwire.Echo","args":"no"}', '[1,2]', big,
    '{"class":"jobwire.Echo","args":[0x10]}');
  const id = await client.enqueue('q', 'jobwire.Echo', ['after']);
  const [echo] = await waitFor(() => echoes(r).then((e) => e.length && e), { what: 'echo after bad payloads', timeout: 15000 });
  assert.equal(echo.id, id);
  const fs = await failures(r);
  assert.deepEqual(fs.map((f) => f.exception), ['jobwire.InvalidJSON', 'jobwire.InvalidPayload', 'jobwire.InvalidPayload',
    'jobwire.PayloadTooLarge', 'jobwire.InvalidJSON']);
  assert.equal(fs[0].payload, 'not json {');
  assert.deepEqual(fs[1].payload, { class: 'jobwire.Echo', args: 'no' });
  assert.match(fs[1].error, /args must be array/);
  assert.equal(fs[3].payload.length, big.length);
  assert.equal(fs[4].payload, '{"class":"jobwire.Echo","args":[0x10]}');
  assert.equal(await r.get('resque:stat:failed'), '5');
});

test('strict priority across queues', { timeout: 60000 }, async () => {
  const r = server.redis;
  await client.enqueueMany('low', [1, 2, 3].map((i) => ({ class: 'jobwire.Echo', args: [`low${i}`] })));
  await client.enqueueMany('high', [1, 2, 3].map((i) => ({ class: 'jobwire.Echo', args: [`high${i}`] })));
  startWorker('high,low');
  const es = await waitFor(() => echoes(r).then((e) => e.length === 6 && e), { what: '6 echoes' });
  assert.deepEqual(es.map((e) => e.args[0]), ['high1', 'high2', 'high3', 'low1', 'low2', 'low3']);
});

test('wildcard: every queue alphabetically, new queues seen', { timeout: 60000 }, async () => {
  const r = server.redis;
  await client.enqueue('b', 'jobwire.Echo', ['b']);
  await client.enqueue('a', 'jobwire.Echo', ['a']);
  const w = startWorker('*');
  assert.match(w.id, /:\*$/);
  await waitFor(() => echoes(r).then((e) => e.length === 2), { what: 'a and b' });
  assert.deepEqual((await echoes(r)).map((e) => e.args[0]), ['a', 'b']);
  await client.enqueue('c-new', 'jobwire.Echo', ['c']); // wakes through wake-new-queue
  await r.sadd('resque:queues', 'plain');
  await r.rpush('resque:queue:plain', '{"class":"jobwire.Echo","args":["plain"]}'); // a plain Resque producer
  const es = await waitFor(() => echoes(r).then((e) => e.length === 4 && e), { what: 'c and plain' });
  assert.deepEqual(es.slice(2).map((e) => e.queue).sort(), ['c-new', 'plain']);
});

test('control list: pause, resume, kill ignored, quit', { timeout: 60000 }, async () => {
  const r = server.redis;
  const w = startWorker('q');
  await waitFor(() => r.sismember('resque:workers', w.id), { what: 'registered' });
  await r.rpush(`resque:jobwire:control:${w.id}`, 'pause');
  await waitFor(async () => (await r.hget(`resque:jobwire:worker:${w.id}`, 'state')) === 'paused', { what: 'paused' });
  await client.enqueue('q', 'jobwire.Echo', ['while paused']);
  await sleep(500);
  assert.equal(await r.llen('resque:queue:q'), 1);
  await r.rpush(`resque:jobwire:control:${w.id}`, 'kill', 'frobnicate', 'resume');
  await waitFor(() => echoes(r).then((e) => e.length === 1), { what: 'echo after resume' });
  assert.equal(await r.hget(`resque:jobwire:worker:${w.id}`, 'state'), 'idle');
  await r.rpush(`resque:jobwire:control:${w.id}`, 'quit');
  await running[0].done;
  running = [];
  assert.equal(await r.sismember('resque:workers', w.id), 0);
  assert.equal(await r.exists(`resque:jobwire:worker:${w.id}`), 0);
  assert.equal(await r.zscore('resque:jobwire:leases', w.id), null);
});

test('pause-all-workers stops reserving', { timeout: 60000 }, async () => {
  const r = server.redis;
  await r.set('resque:pause-all-workers', ' TRUE ');
  startWorker('q');
  await client.enqueue('q', 'jobwire.Echo', []);
  await sleep(600);
  assert.equal(await r.llen('resque:queue:q'), 1);
  await r.del('resque:pause-all-workers');
  await waitFor(() => echoes(r).then((e) => e.length === 1), { what: 'echo after unpause' });
});

test('a process with concurrency 3 hosts three workers host:pid+n:queues', { timeout: 60000 }, async () => {
  const r = server.redis;
  const p = new WorkerProcess({ queues: 'q', concurrency: 3, redisUrl: server.url, blockTimeoutMs: 200, logger: quiet });
  registerConformanceJobs(p);
  const done = p.run();
  const ids = [1, 2, 3].map((n) => `${os.hostname()}:${process.pid}+${n}:q`);
  assert.deepEqual(p.workers.map((w) => w.id), ids);
  await client.enqueueMany('q', Array.from({ length: 30 }, () => ({ class: 'jobwire.Sleep', args: [20] })));
  const es = await waitFor(() => echoes(r).then((e) => e.length === 30 && e), { what: '30 echoes' });
  assert.ok(new Set(es.map((e) => e.worker)).size >= 2, 'jobs spread over workers');
  for (const id of ids) assert.equal(await r.hget(`resque:jobwire:worker:${id}`, 'pid'), id.split(':')[1]);
  p.quit();
  await done;
  assert.equal(await r.scard('resque:workers'), 0);
});

test('the N workers of a process share their connections and beat together', { timeout: 60000 }, async () => {
  // lib/worker-process.js, lib/idle.js: one command connection and one blocking connection (the
  // watcher's) for an idle process, not 2N; one beat timer renews every lease; a parked worker's
  // control command reaches it at once, not after the 5 s block timeout.
  const r = server.redis;
  const clients = async () => (await r.client('LIST')).trim().split('\n').length;
  const before = await clients();
  const p = new WorkerProcess({ queues: 'q', concurrency: 3, redisUrl: server.url, blockTimeoutMs: 5000,
    heartbeatMs: 200, leaseMs: 1000, logger: quiet });
  registerConformanceJobs(p);
  const done = p.run();
  try {
    await waitFor(() => r.scard('resque:workers').then((n) => n === 3), { what: '3 registered' });
    await waitFor(async () => (await clients()) - before === 2, { what: '2 connections', timeout: 5000 })
      .catch(async (err) => { throw new Error(`${err.message}: ${(await clients()) - before} connections`); });
    await sleep(1500); // longer than the lease: only beats keep the three registered
    const now = Date.now();
    for (const w of p.workers) {
      assert.ok(Number(await r.zscore('resque:jobwire:leases', w.id)) > now, `${w.id}: lease renewed`);
    }
    assert.equal(await r.scard('resque:workers'), 3);
    // the two that park (not the watcher) get the command through the watcher's call
    const parked = p.workers.filter((w) => w !== p.shared.idle.watcher);
    assert.equal(parked.length, 2);
    for (const w of parked) await r.rpush(`resque:jobwire:control:${w.id}`, 'pause');
    await waitFor(() => parked.every((w) => w.paused), { what: 'both parked workers paused', timeout: 1500 });
    assert.ok(!p.shared.idle.watcher.paused, 'the watcher was not paused');
    await r.rpush(`resque:jobwire:control:${p.shared.idle.watcher.id}`, 'pause');
    await waitFor(() => p.workers.every((w) => w.paused), { what: 'all three paused', timeout: 1500 });
    await r.rpush('resque:queue:q', JSON.stringify({ class: 'jobwire.Echo', args: ['after resume'] }));
    for (const w of p.workers) await r.rpush(`resque:jobwire:control:${w.id}`, 'resume');
    await waitFor(() => p.workers.every((w) => !w.paused), { what: 'all three resumed', timeout: 1500 });
    await waitFor(() => echoes(r).then((e) => e.length === 1), { what: 'a job after resume (no wake marker: the watcher looks)', timeout: 8000 });
    // jobs one at a time pass the watch from worker to worker: still one blocking connection
    for (let i = 0; i < 12; i++) {
      await client.enqueue('q', 'jobwire.Echo', [i]); // the shared test client, counted in `before`
      await waitFor(() => echoes(r).then((e) => e.length === i + 2), { what: `job ${i}` });
    }
    assert.ok(new Set((await echoes(r)).map((e) => e.worker)).size >= 2, 'the watch went round');
    await waitFor(async () => (await clients()) - before === 2, { what: '2 connections after the jobs', timeout: 5000 })
      .catch(async (err) => { throw new Error(`${err.message}: ${(await clients()) - before} connections`); });
  } finally {
    p.quit();
    await done;
  }
  assert.equal(await r.scard('resque:workers'), 0);
});

test('recovers an expired peer and requeues its job at the head', { timeout: 60000 }, async () => {
  const r = server.redis;
  const dead = 'ghost:1:q';
  const payload = '{"class":"jobwire.Echo","args":["recovered"],"id":"ghostjob"}';
  await r.sadd('resque:workers', dead);
  await r.zadd('resque:jobwire:leases', Date.now() - 10000, dead);
  await r.hset(`resque:jobwire:inflight:${dead}`, 'queue', 'q', 'payload', payload, 'token', '1', 'job_key', 'ghostjob', 'reserved_ms', '1');
  startWorker('q');
  const [echo] = await waitFor(() => echoes(r).then((e) => e.length && e), { what: 'recovered job ran' });
  assert.equal(echo.id, 'ghostjob');
  assert.equal(await r.sismember('resque:workers', dead), 0);
  assert.equal(await r.exists(`resque:jobwire:inflight:${dead}`), 0);
});

test('job-timeout-ms: an over-long job is failed as jobwire.Timeout and the worker moves on', { timeout: 60000 }, async () => {
  const r = server.redis;
  startWorker('q', { jobTimeoutMs: 150 });
  await client.enqueue('q', 'jobwire.Sleep', [1500]);
  const id = await client.enqueue('q', 'jobwire.Echo', ['next']);
  const [echo] = await waitFor(() => echoes(r).then((e) => e.length && e), { what: 'next job' });
  assert.equal(echo.id, id);
  const [f] = await failures(r);
  assert.equal(f.exception, 'jobwire.Timeout');
  assert.equal(f.payload.class, 'jobwire.Sleep');
});

test('a settle after the worker was recovered as dead is dropped, not applied', { timeout: 60000 }, async () => {
  const r = server.redis;
  const w = startWorker('q');
  await client.enqueue('q', 'jobwire.Sleep', [900]);
  await waitFor(() => r.hexists(`resque:jobwire:inflight:${w.id}`, 'token'), { what: 'held' });
  // a peer declares it dead (as if its lease had lapsed): the job goes back with one death
  await r.zadd('resque:jobwire:leases', 0, w.id);
  const peer = new Membership({
    redis: r, scripts: scripts(), keys: keys('resque'), id: 'peer:1:other', leaseMs: 30000, maxDeaths: 3, log: quiet,
  });
  assert.deepEqual(await peer.unregister(w.id, 'expired'), ['done', 'requeued']);
  assert.equal(await r.hget('resque:jobwire:deaths', await r.lindex('resque:queue:q', 0).then((p) => JSON.parse(p).id)), '1');
  // the worker learns it at its next beat, registers again, then runs the job a second time
  const es = await waitFor(() => echoes(r).then((e) => e.length >= 2 && e), { what: 'two runs', timeout: 10000 });
  assert.equal(es[0].id, es[1].id);
  await waitFor(async () => (await r.get('resque:stat:processed')) === '1', { what: 'exactly one settle' });
  assert.equal(await r.hlen('resque:jobwire:deaths'), 0);
});
