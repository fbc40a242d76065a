// Redis restarts under a running worker (protocol.md 7.7): it must not exit, must reconnect,
// reload its scripts (NOSCRIPT) and register again, then carry on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { startRedis, spawnWorker, killProc, waitFor, echoes, sleep } from './helpers.js';
import { Client } from '../lib/client.js';

let server;
const procs = [];
before(async () => {
  server = await startRedis();
}, { timeout: 30000 });
after(async () => {
  for (const p of procs) await killProc(p);
  await server?.stop();
}, { timeout: 30000 });

test('worker survives a Redis restart and keeps processing', { timeout: 60000 }, async () => {
  const r = server.redis;
  const p = spawnWorker(server.url, 'q', ['--concurrency', '2']);
  procs.push(p);
  const client = new Client({ redisUrl: server.url });
  try {
    await client.enqueue('q', 'jobwire.Echo', ['before']);
    await waitFor(() => echoes(r).then((e) => e.length === 1), { what: 'first echo' });

    await server.kill();
    await sleep(1200); // down for a while: the worker retries with backoff
    assert.equal(p.proc.exitCode, null, 'worker still running while Redis is down');
    await server.start();

    // the restarted Redis is empty: no scripts, no registration
    const id = await waitFor(() => client.enqueue('q', 'jobwire.Echo', ['after']).catch(() => false),
      { what: 'enqueue after restart', timeout: 10000 });
    const es = await waitFor(() => echoes(r).then((e) => e.length === 1 && e), { what: 'echo after restart', timeout: 30000 })
      .catch((err) => { console.log(p.output()); throw err; });
    assert.equal(es[0].id, id);
    const ids = [1, 2].map((n) => `${os.hostname()}:${p.pid}+${n}:q`);
    await waitFor(async () => (await r.smembers('resque:workers')).sort().join() === ids.join(), { what: 're-registered' });
    assert.equal(p.proc.exitCode, null);
  } finally {
    await client.close();
  }
  process.kill(p.pid, 'SIGTERM');
  assert.equal((await p.exited).code, 0, p.output());
});

test('SIGTERM while Redis is down: the worker still exits 0, promptly', { timeout: 60000 }, async () => {
  const p = spawnWorker(server.url, 'q');
  procs.push(p);
  await waitFor(() => server.redis.scard('resque:workers'), { what: 'registered' });
  await server.kill();
  await sleep(700);
  const t0 = Date.now();
  process.kill(p.pid, 'SIGTERM');
  const { code } = await p.exited;
  assert.equal(code, 0, p.output());
  assert.ok(Date.now() - t0 < 6000, `exited after ${Date.now() - t0} ms`);
  await server.start();
});
