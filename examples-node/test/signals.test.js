// Signals on a spawned worker process (protocol.md 7.5) and its process title (7.8).
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { startRedis, spawnWorker, killProc, waitFor, echoes, sleep } from './helpers.js';
import { Client } from '../lib/client.js';

let server;
let client;
let procs = [];
before(async () => {
  server = await startRedis();
  client = new Client({ redisUrl: server.url });
}, { timeout: 30000 });
after(async () => {
  await client?.close();
  await server?.stop();
}, { timeout: 30000 });
afterEach(async () => {
  for (const p of procs) await killProc(p);
  procs = [];
  await server.redis.flushdb();
}, { timeout: 30000 });

function worker(queues, extra) {
  const p = spawnWorker(server.url, queues, extra);
  procs.push(p);
  p.id = `${os.hostname()}:${p.pid}:${queues}`;
  return p;
}

const registered = (p) => waitFor(() => server.redis.sismember('resque:workers', p.id), { what: `${p.id} registered` });
const holding = (p) => waitFor(() => server.redis.hexists(`resque:jobwire:inflight:${p.id}`, 'token'), { what: 'job in flight' });

test('SIGQUIT: finishes the current job, settles it, leaves, exits 0', { timeout: 60000 }, async () => {
  const r = server.redis;
  const p = worker('q');
  await registered(p);
  const id = await client.enqueue('q', 'jobwire.Sleep', [700]);
  await holding(p);
  process.kill(p.pid, 'SIGQUIT');
  const { code } = await p.exited;
  assert.equal(code, 0, p.output());
  const es = await echoes(r);
  assert.equal(es.length, 1);
  assert.equal(es[0].id, id);
  assert.equal(await r.get('resque:stat:processed'), '1');
  assert.equal(await r.llen('resque:queue:q'), 0);
  assert.equal(await r.sismember('resque:workers', p.id), 0);
  assert.equal(await r.exists(`resque:jobwire:inflight:${p.id}`), 0);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  test(`${sig}: leaves at once, gives the running job back to its queue, exits 0`, { timeout: 60000 }, async () => {
    const r = server.redis;
    const p = worker('q');
    await registered(p);
    await client.enqueue('q', 'jobwire.Sleep', [5000]);
    await holding(p);
    const t0 = Date.now();
    process.kill(p.pid, sig);
    const { code } = await p.exited;
    assert.equal(code, 0, p.output());
    assert.ok(Date.now() - t0 < 5000, 'exited promptly');
    assert.equal(await r.llen('resque:queue:q'), 1);
    assert.equal(JSON.parse(await r.lindex('resque:queue:q', 0)).class, 'jobwire.Sleep');
    assert.equal((await echoes(r)).length, 0);
    assert.equal(await r.get('resque:stat:processed'), null);
    assert.equal(await r.sismember('resque:workers', p.id), 0);
    assert.equal(await r.hlen('resque:jobwire:deaths'), 0, 'no death counted');
  });
}

test('SIGUSR2 pauses (state paused), SIGCONT resumes; idle SIGTERM exits 0', { timeout: 60000 }, async () => {
  const r = server.redis;
  const p = worker('q');
  await registered(p);
  process.kill(p.pid, 'SIGUSR2');
  await waitFor(async () => (await r.hget(`resque:jobwire:worker:${p.id}`, 'state')) === 'paused', { what: 'paused' });
  await client.enqueue('q', 'jobwire.Echo', ['x']);
  await sleep(600);
  assert.equal(await r.llen('resque:queue:q'), 1, 'nothing reserved while paused');
  process.kill(p.pid, 'SIGCONT');
  await waitFor(() => echoes(r).then((e) => e.length === 1), { what: 'echo after SIGCONT' });
  assert.equal(await r.hget(`resque:jobwire:worker:${p.id}`, 'state'), 'idle');
  process.kill(p.pid, 'SIGTERM');
  assert.equal((await p.exited).code, 0);
});

test('process title', { timeout: 60000 }, async () => {
  const p = worker('q');
  await registered(p);
  const title = await waitFor(() => {
    const t = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').replace(/\0+$/, '');
    return t.startsWith('jobwire-node/resque-1: ') && t;
  }, { what: 'process title' });
  assert.match(title, /^jobwire-node\/resque-1: (Waiting for q|Starting)/);
});

test('a namespace of another spec major: the worker refuses to register and exits 1', { timeout: 60000 }, async () => {
  await server.redis.hset('resque:jobwire:meta', 'spec_major', '99');
  const p = worker('q');
  const { code } = await p.exited;
  assert.equal(code, 1, p.output());
  assert.match(p.output(), /JOBWIRE_SPEC_MISMATCH/);
  assert.equal(await server.redis.scard('resque:workers'), 0);
});

test('bad configuration exits 2 with a one-line message', { timeout: 60000 }, async () => {
  for (const args of [['--lease-ms', '500', '--heartbeat-ms', '300'], ['--concurrency', 'x'],
    ['--lease-ms=500', '--heartbeat-ms=300'], ['--heartbeat-ms', '+5'], ['--bogus', '1']]) {
    const p = worker('q', args);
    const { code } = await p.exited;
    assert.equal(code, 2, p.output());
    // protocol.md 7.2: bad usage is one line, not the usage text
    assert.equal(p.output().split('\n').filter((line) => line.trim()).length, 1, p.output());
  }
});
