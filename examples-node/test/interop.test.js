// Interoperation with the real node-resque (npm): each side runs the other's jobs and reads the
// other's failure records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { spawnWorker, spawnNode, waitFor, echoes } from './helpers.js';
import { useNodeResque } from './node-resque-fixture.js';

const nr = useNodeResque();

function nodeResqueWorker(queues) {
  const p = spawnNode('interop/node-resque-worker.js', ['--queues', queues, '--redis-url', nr.server.url]);
  nr.track(p);
  return p;
}

test('a job enqueued by our client is run by a real node-resque worker', { timeout: 60000 }, async () => {
  const r = nr.server.redis;
  const p = nodeResqueWorker('nrq');
  const id = await nr.client.enqueue('nrq', 'jobwire.Echo', [1, 'two', { three: [3] }]);
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
  const r = nr.server.redis;
  const w = spawnWorker(nr.server.url, 'ours');
  nr.track(w);
  // with the CLI helper (a real node-resque Queue) and in-process
  const e = spawnNode('interop/node-resque-enqueue.js', ['ours', 'jobwire.Echo', '42', '"x"', '--redis-url', nr.server.url]);
  assert.equal((await e.exited).code, 0, e.output());
  await nr.queue.enqueue('ours', 'jobwire.Echo', [{ nested: true }]);
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
  const w = spawnWorker(nr.server.url, 'f1');
  nr.track(w);
  const id = await nr.client.enqueue('f1', 'jobwire.Fail', ['ours broke']);
  await waitFor(async () => (await nr.queue.failedCount()) === 1, { what: 'failure', timeout: 30000 });
  const [f] = await nr.queue.failed(0, -1);
  assert.equal(f.exception, 'Error');
  assert.equal(f.error, 'ours broke');
  assert.equal(f.queue, 'f1');
  assert.equal(f.payload.class, 'jobwire.Fail');
  assert.equal(f.payload.id, id);
  assert.deepEqual(f.payload.args, ['ours broke']);
  assert.equal(f.worker, `${os.hostname()}:${w.pid}:f1`);
  assert.ok(Array.isArray(f.backtrace));
  // node-resque removes it by value (LREM of the re-stringified record): our bytes allow that
  await nr.queue.removeFailed(f);
  assert.equal(await nr.queue.failedCount(), 0);
});

test('a failure written by node-resque is read by our client', { timeout: 60000 }, async () => {
  const p = nodeResqueWorker('f2');
  await nr.queue.enqueue('f2', 'jobwire.Fail', ['theirs broke']);
  const [f] = await waitFor(() => nr.client.failures().then((l) => l.length && l), { what: 'node-resque failure', timeout: 10000 });
  assert.equal(f.valid, true);
  assert.equal(f.exception, 'Error');
  assert.equal(f.error, 'theirs broke');
  assert.equal(f.queue, 'f2');
  assert.equal(f.worker, `${os.hostname()}:${p.pid}`);
  assert.equal(f.payload.class, 'jobwire.Fail');
  assert.ok(Array.isArray(f.backtrace));
  assert.ok(f.failedAt.includes('GMT'), f.failedAt);
  const info = await nr.client.info();
  assert.equal(info.failures, 1);
  assert.equal(info.failed, 1);
});

test('node-resque allWorkingOn() sees the job our worker holds', { timeout: 60000 }, async () => {
  const w = spawnWorker(nr.server.url, 'busy');
  nr.track(w);
  const id = await nr.client.enqueue('busy', 'jobwire.Sleep', [3000]);
  const name = `${os.hostname()}:${w.pid}`;
  const all = await waitFor(async () => {
    const a = await nr.queue.allWorkingOn();
    return typeof a[name] === 'object' && a;
  }, { what: 'allWorkingOn entry', timeout: 30000 });
  assert.equal(all[name].queue, 'busy');
  assert.equal(all[name].payload.id, id);
  assert.match(all[name].run_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});
