// Interoperation with the real node-resque (npm): each side runs the other's jobs and reads the
// other's failure records.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { Queue } from 'node-resque';
import { startRedis, spawnWorker, spawnNode, killProc, waitFor, echoes } from './helpers.js';
import { Client } from '../lib/client.js';

let server;
let client;
let nrQueue;
let procs = [];
before(async () => {
  server = await startRedis();
  client = new Client({ redisUrl: server.url });
  nrQueue = new Queue({ connection: { host: '127.0.0.1', port: server.port, namespace: 'resque' } });
  nrQueue.on('error', () => {});
  await nrQueue.connect();
}, { timeout: 30000 });
after(async () => {
  await nrQueue?.end();
  await client?.close();
  await server?.stop();
}, { timeout: 30000 });
afterEach(async () => {
  for (const p of procs) await killProc(p, 'SIGTERM');
  procs = [];
  await server.redis.flushdb();
}, { timeout: 30000 });

function nodeResqueWorker(queues) {
  const p = spawnNode('interop/node-resque-worker.js', ['--queues', queues, '--redis-url', server.url]);
  procs.push(p);
  return p;
}

test('a job enqueued by our client is run by a real node-resque worker', { timeout: 60000 }, async () => {
  const r = server.redis;
  const p = nodeResqueWorker('nrq');
  const id = await client.enqueue('nrq', 'jobwire.Echo', [1, 'two', { three: [3] }]);
  const [echo] = await waitFor(() => echoes(r).then((e) => e.length && e), { what: 'node-resque echo', timeout: 10000 });
  assert.equal(echo.impl, 'node-resque');
  assert.equal(echo.id, id);
  assert.deepEqual(echo.args, [1, 'two', { three: [3] }]);
  assert.equal(echo.queue, 'nrq');
  assert.equal(echo.pid, p.pid);
  process.kill(p.pid, 'SIGTERM');
  assert.equal((await p.exited).code, 0, p.output());
});

test('a job enqueued by node-resque is run by our worker', { timeout: 60000 }, async () => {
  const r = server.redis;
  const w = spawnWorker(server.url, 'ours');
  procs.push(w);
  // with the CLI helper (a real node-resque Queue) and in-process
  const e = spawnNode('interop/node-resque-enqueue.js', ['ours', 'jobwire.Echo', '42', '"x"', '--redis-url', server.url]);
  assert.equal((await e.exited).code, 0, e.output());
  await nrQueue.enqueue('ours', 'jobwire.Echo', [{ nested: true }]);
  const es = await waitFor(() => echoes(r).then((l) => l.length === 2 && l), { what: 'our echoes', timeout: 30000 });
  assert.deepEqual(es.map((x) => x.args), [[42, 'x'], [{ nested: true }]]);
  for (const x of es) {
    assert.equal(x.impl, 'node');
    assert.equal(x.id, null);
    assert.equal(x.queue, 'ours');
    assert.equal(x.worker, `${os.hostname()}:${w.pid}:ours`);
  }
});

test('a failure written by our worker is read by node-resque queue.failed()', { timeout: 60000 }, async () => {
  const w = spawnWorker(server.url, 'f1');
  procs.push(w);
  const id = await client.enqueue('f1', 'jobwire.Fail', ['ours broke']);
  await waitFor(async () => (await nrQueue.failedCount()) === 1, { what: 'failure', timeout: 30000 });
  const [f] = await nrQueue.failed(0, -1);
  assert.equal(f.exception, 'Error');
  assert.equal(f.error, 'ours broke');
  assert.equal(f.queue, 'f1');
  assert.equal(f.payload.class, 'jobwire.Fail');
  assert.equal(f.payload.id, id);
  assert.deepEqual(f.payload.args, ['ours broke']);
  assert.equal(f.worker, `${os.hostname()}:${w.pid}:f1`);
  assert.ok(Array.isArray(f.backtrace));
  // node-resque removes it by value (LREM of the re-stringified record): our bytes allow that
  await nrQueue.removeFailed(f);
  assert.equal(await nrQueue.failedCount(), 0);
});

test('a failure written by node-resque is read by our client', { timeout: 60000 }, async () => {
  const p = nodeResqueWorker('f2');
  await nrQueue.enqueue('f2', 'jobwire.Fail', ['theirs broke']);
  const [f] = await waitFor(() => client.failures().then((l) => l.length && l), { what: 'node-resque failure', timeout: 10000 });
  assert.equal(f.valid, true);
  assert.equal(f.exception, 'Error');
  assert.equal(f.error, 'theirs broke');
  assert.equal(f.queue, 'f2');
  assert.equal(f.worker, `${os.hostname()}:${p.pid}`);
  assert.equal(f.payload.class, 'jobwire.Fail');
  assert.ok(Array.isArray(f.backtrace));
  assert.ok(f.failedAt.includes('GMT'), f.failedAt);
  const info = await client.info();
  assert.equal(info.failures, 1);
  assert.equal(info.failed, 1);
});

test('node-resque allWorkingOn() sees the job our worker holds', { timeout: 60000 }, async () => {
  const w = spawnWorker(server.url, 'busy');
  procs.push(w);
  const id = await client.enqueue('busy', 'jobwire.Sleep', [3000]);
  const name = `${os.hostname()}:${w.pid}`;
  const all = await waitFor(async () => {
    const a = await nrQueue.allWorkingOn();
    return typeof a[name] === 'object' && a;
  }, { what: 'allWorkingOn entry', timeout: 30000 });
  assert.equal(all[name].queue, 'busy');
  assert.equal(all[name].payload.id, id);
  assert.match(all[name].run_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});
