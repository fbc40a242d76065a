// Crash recovery through leases (protocol.md 7.6, 8.6) with real worker processes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { startRedis, spawnWorker, killProc, waitFor, echoes, failures } from './helpers.js';
import { Client } from '../lib/client.js';

let server;
let client;
const procs = [];
before(async () => {
  server = await startRedis();
  client = new Client({ redisUrl: server.url });
}, { timeout: 30000 });
after(async () => {
  for (const p of procs) await killProc(p);
  await client?.close();
  await server?.stop();
}, { timeout: 30000 });

function worker(queues, extra = []) {
  const p = spawnWorker(server.url, queues, ['--lease-ms', '1000', '--heartbeat-ms', '300', ...extra]);
  procs.push(p);
  p.id = `${os.hostname()}:${p.pid}:${queues}`;
  return p;
}

test('SIGKILLed worker: its job is requeued by a live peer and completed', { timeout: 60000 }, async () => {
  const r = server.redis;
  const a = worker('crashq');
  const id = await client.enqueue('crashq', 'jobwire.Sleep', [1500]);
  await waitFor(() => r.hexists(`resque:jobwire:inflight:${a.id}`, 'token'), { what: 'A holds the job' });
  await killProc(a, 'SIGKILL');
  const b = worker('crashq');
  const [echo] = await waitFor(() => echoes(r).then((e) => e.length && e), { what: 'job completed by B', timeout: 30000 });
  assert.equal(echo.id, id);
  assert.equal(echo.worker, b.id);
  assert.equal(await r.sismember('resque:workers', a.id), 0, 'dead worker removed');
  assert.equal(await r.exists(`resque:jobwire:inflight:${a.id}`), 0);
  assert.equal(await r.zscore('resque:jobwire:leases', a.id), null);
  // B settles after its echo (in fork mode the outcome crosses from the child first): wait for it
  await waitFor(async () => (await r.hlen('resque:jobwire:deaths')) === 0, { what: 'deaths cleared once settled' });
  await killProc(b, 'SIGTERM');
});

test('--no-fork: jobwire.Crash fails as jobwire.PoisonJob after 3 deaths', { timeout: 60000 }, async () => {
  const r = server.redis;
  const id = await client.enqueue('poison', 'jobwire.Crash', []);
  const dead = [];
  let survivor;
  // each in-process worker reserves the job and dies; the next one recovers it (one death each time)
  for (let i = 0; i < 6; i++) {
    const p = worker('poison', ['--no-fork']);
    const outcome = await Promise.race([
      p.exited.then(() => 'died'),
      waitFor(() => failures(r).then((f) => f.length > 0), { timeout: 15000, what: 'poison record' }).then(() => 'poisoned'),
    ]);
    if (outcome === 'poisoned') {
      survivor = p;
      break;
    }
    assert.equal((await p.exited).signal, 'SIGKILL');
    dead.push(p);
  }
  assert.equal(dead.length, 3, 'three workers died');
  const [f] = await failures(r);
  assert.equal(f.exception, 'jobwire.PoisonJob');
  assert.equal(f.payload.id, id);
  assert.match(f.error, /3 times/);
  assert.equal(f.queue, 'poison');
  assert.equal(await r.llen('resque:queue:poison'), 0);
  assert.equal(await r.hexists('resque:jobwire:deaths', id), 0);
  for (const p of dead) assert.equal(await r.sismember('resque:workers', p.id), 0);
  await killProc(survivor, 'SIGTERM');
});
