// Delayed jobs shared with the real node-resque (npm), protocol.md 14.2 and 14.6: node-resque's
// Scheduler moves the delayed jobs our client stores, and our worker promotes and runs the jobs
// node-resque's enqueueAt / enqueueIn store, without any node-resque scheduler running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnWorker, spawnNode, waitFor, echoes } from './helpers.js';
import { useNodeResque } from './node-resque-fixture.js';

const nr = useNodeResque();

test('node-resque\'s Scheduler moves a delayed job our client stored; our worker runs it', { timeout: 60000 }, async () => {
  const r = nr.server.redis;
  // Our worker does not promote here (--scheduler off): only node-resque's scheduler can move it.
  nr.track(spawnWorker(nr.server.url, 'nrs', ['--scheduler', 'off']));
  nr.track(spawnNode('interop/node-resque-scheduler.js', ['--redis-url', nr.server.url]));
  const due = Date.now() + 1500;
  await nr.client.enqueueAt('nrs', 'jobwire.Echo', ['from-jobwire'], due);
  const [rec] = await waitFor(async () => {
    const e = await echoes(r);
    return e.length === 1 ? e : null;
  }, { timeout: 20000, what: 'the job moved by node-resque' });
  assert.deepEqual(rec.args, ['from-jobwire']);
  // node-resque's Scheduler takes buckets up to Math.round(now / 1000): up to 500 ms before the
  // bucket second (our bucket is ceil(due / 1000)), so by at most 500 ms before the due time.
  assert.ok(Date.now() >= due - 500, `ran ${due - Date.now()} ms before its time`);
  // protocol.md 14.2: node-resque pushes a new payload of class, args and queue only.
  assert.equal(rec.id, null);
  assert.equal(await r.zcard('resque:delayed_queue_schedule'), 0);
});

test('our worker promotes and runs node-resque\'s enqueueAt and enqueueIn jobs', { timeout: 60000 }, async () => {
  const r = nr.server.redis;
  const w = nr.track(spawnWorker(nr.server.url, 'nrd'));
  await waitFor(async () => (await r.scard('resque:workers')) === 1, { what: 'our worker registered' });
  const at = Date.now() + 1200;
  await nr.queue.enqueueAt(at, 'nrd', 'jobwire.Echo', ['at']);
  await nr.queue.enqueueIn(800, 'nrd', 'jobwire.Echo', ['in']);
  const stored = await r.zcard('resque:delayed_queue_schedule');
  assert.ok(stored >= 1 || (await echoes(r)).length > 0, 'node-resque stored them in delayed_queue_schedule');
  const runs = await waitFor(async () => {
    const e = await echoes(r);
    return e.length === 2 ? e : null;
  }, { timeout: 20000, what: 'both node-resque delayed jobs' });
  assert.deepEqual(runs.map((e) => e.args[0]).sort(), ['at', 'in']);
  assert.ok(Date.now() >= at - 500, 'node-resque buckets are Math.round(at / 1000): up to 500 ms early');
  assert.equal(await r.zcard('resque:delayed_queue_schedule'), 0);
  assert.deepEqual(await r.keys('resque:timestamps:*'), [], 'node-resque\'s reverse index is cleaned up');
  assert.match(w.output(), /registered/);
});
