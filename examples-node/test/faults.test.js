// Faults beyond a clean restart, against the Node worker (issue #13): Redis unreachable for 10 s,
// a job that finishes while Redis is down, a port that accepts and never answers, the connection
// cut mid-reply, Redis at maxmemory with noeviction. No worker exits and nothing is lost.
// Each test has its own redis-server (AOF always: a restart keeps what was acknowledged) and,
// where the fault is on the wire, the shared proxy tests/fault_proxy.py (the Python and C fault
// tests use the same one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedis, startFaultProxy, spawnNode, killProc, waitFor, echoes, failures, sleep } from './helpers.js';
import { Client } from '../lib/client.js';

const TIMINGS = ['--heartbeat-ms', '200', '--lease-ms', '5000', '--block-timeout-ms', '500'];

/** Runs `body({server, start})` against a private AOF redis-server; stops what it started. */
async function withFaults(body) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobwire-faults-'));
  const server = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] });
  const workers = [];
  const clients = [];
  const start = (url = server.url) => {
    const w = spawnNode('worker.js', ['--queues', 'q', '--redis-url', url, ...TIMINGS]);
    workers.push(w);
    return w;
  };
  const client = () => {
    const c = new Client({ redisUrl: server.url });
    clients.push(c);
    return c;
  };
  try {
    await body({ server, start, client });
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    for (const w of workers) await killProc(w);
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const registered = (server) => server.redis.scard('resque:workers').then((n) => n >= 1);
const echoIds = async (server) => (await echoes(server.redis)).map((e) => e.id);
const failedIds = async (server) => (await failures(server.redis)).map((f) => f.payload?.id);

/** The worker is alive and runs a fresh job end to end. */
async function processesOne(server, client, worker, timeout = 20000) {
  const id = await waitFor(() => client.enqueue('q', 'jobwire.Echo', ['probe']).catch(() => false),
    { what: 'the probe enqueued', timeout });
  await waitFor(async () => (await echoIds(server)).includes(id), { what: `the probe job to run (${worker.output().slice(-1500)})`, timeout });
  assert.equal(worker.proc.exitCode, null, worker.output());
}

test('Redis unreachable for 10 s: the worker waits and carries on', { timeout: 90000 }, () => withFaults(async ({ server, start, client }) => {
  const w = start();
  const c = client();
  await waitFor(() => registered(server), { what: 'the worker to register' });
  await processesOne(server, c, w);
  await server.kill();
  await sleep(10000);
  assert.equal(w.proc.exitCode, null, `the worker exited while Redis was away: ${w.output()}`);
  await server.start();
  await processesOne(server, c, w);
}));

test('a job that finishes while Redis is down is settled once Redis is back', { timeout: 90000 }, () => withFaults(async ({ server, start, client }) => {
  const w = start();
  const c = client();
  await waitFor(() => registered(server), { what: 'the worker to register' });
  // jobwire.Fail finishes without touching Redis; a sleep ahead of it makes it end in the outage
  await c.enqueue('q', 'jobwire.Sleep', [800]);
  const failing = await c.enqueue('q', 'jobwire.Fail', ['kept across the outage']);
  await waitFor(async () => (await server.redis.keys('resque:jobwire:inflight:*')).length, { what: 'the sleep reserved' });
  await sleep(200);
  await server.kill();
  await sleep(3000);
  await server.start();
  const mine = await waitFor(async () => {
    const r = server.redis;
    const records = (await failures(r)).filter((f) => f.payload?.id === failing);
    const clear = (await r.keys('resque:jobwire:inflight:*')).length === 0 && (await r.llen('resque:queue:q')) === 0;
    return records.length && clear ? records : null;
  }, { what: `the held outcome settled (${w.output().slice(-1500)})` });
  assert.equal(mine.length, 1);
  assert.equal(mine[0].error, 'kept across the outage');
  await processesOne(server, c, w);
}));

test('a port that accepts and never answers: the worker waits, then registers', { timeout: 90000 }, () => withFaults(async ({ server, start, client }) => {
  const proxy = await startFaultProxy(server.port);
  try {
    await proxy.command('hang');
    const w = start(proxy.url);
    await sleep(6000);
    assert.equal(w.proc.exitCode, null, `the worker exited on a silent port: ${w.output()}`);
    await proxy.command('forward');
    await proxy.command('drop');
    await waitFor(() => registered(server), { what: `the worker to register once Redis answers (${w.output().slice(-1500)})`, timeout: 40000 });
    await processesOne(server, client(), w, 30000);
  } finally {
    await proxy.stop();
  }
}));

test('a connection cut mid-reply loses nothing and fails nothing', { timeout: 120000 }, () => withFaults(async ({ server, start, client }) => {
  const proxy = await startFaultProxy(server.port);
  try {
    const w = start(proxy.url);
    const c = client();
    await waitFor(() => registered(server), { what: 'the worker to register' });
    for (let round = 0; round < 3; round += 1) {
      await proxy.command('cut 3'); // the next reply from Redis arrives as 3 bytes and a closed socket
      const id = await c.enqueue('q', 'jobwire.Echo', [round]);
      await waitFor(async () => (await echoIds(server)).includes(id), { what: `job ${round} after a cut (${w.output().slice(-1500)})` });
    }
    assert.ok(Number((await proxy.command('cuts')).split(' ')[1]) >= 1, 'no reply was cut');
    assert.equal(w.proc.exitCode, null);
    assert.equal(await server.redis.llen('resque:failed'), 0, JSON.stringify(await failures(server.redis)));
  } finally {
    await proxy.stop();
  }
}));

test('Redis at maxmemory (noeviction): enqueue fails clearly, the worker runs on, nothing held is lost', { timeout: 90000 }, () => withFaults(async ({ server, start, client }) => {
  const w = start();
  const c = client();
  const r = server.redis;
  await waitFor(() => registered(server), { what: 'the worker to register' });
  await r.set('resque:pause-all-workers', 'true'); // hold the jobs in the queue while memory fills
  const held = [];
  for (let i = 0; i < 20; i += 1) held.push(await c.enqueue('q', 'jobwire.Echo', [i]));
  await r.config('SET', 'maxmemory-policy', 'noeviction');
  const used = /used_memory:(\d+)/.exec(await r.info('memory'))[1];
  await r.config('SET', 'maxmemory', used);
  let refused = null;
  for (let i = 0; i < 10000 && !refused; i += 1) {
    await c.enqueue('q', 'jobwire.Echo', ['x'.repeat(1000)]).catch((err) => { refused = err; });
  }
  assert.ok(refused, 'enqueue never met the limit');
  assert.match(refused.message, /maxmemory/);
  await r.del('resque:pause-all-workers'); // DEL is allowed at maxmemory; reserving now is refused
  await sleep(3000);
  assert.equal(w.proc.exitCode, null, `the worker exited at maxmemory: ${w.output()}`);
  const queued = (await r.lrange('resque:queue:q', 0, -1)).map((p) => JSON.parse(p).id);
  const inflight = [];
  for (const k of await r.keys('resque:jobwire:inflight:*')) inflight.push(JSON.parse(await r.hget(k, 'payload')).id);
  // a job whose own write (the echo) met the limit fails with Redis' error: kept, not lost
  const kept = new Set([...queued, ...inflight, ...await echoIds(server), ...await failedIds(server)]);
  assert.deepEqual(held.filter((id) => !kept.has(id)), [], 'a held job vanished');
  await r.config('SET', 'maxmemory', '0');
  await waitFor(async () => {
    const done = new Set([...await echoIds(server), ...await failedIds(server)]);
    return held.every((id) => done.has(id));
  }, { what: `every job held before the limit to run (${w.output().slice(-1500)})` });
  const failed = await failures(r);
  assert.ok(failed.every((f) => /maxmemory/.test(f.error)), JSON.stringify(failed));
  await processesOne(server, c, w);
}));
