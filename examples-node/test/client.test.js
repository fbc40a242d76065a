import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from './helpers.js';
import { Client, buildPayload, parseFailure } from '../lib/client.js';
import { InvalidPayloadError } from '../lib/validate.js';

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

test('enqueue one: payload format, queue set, wake marker', { timeout: 60000 }, async () => {
  const r = server.redis;
  const before = Date.now();
  const id = await client.enqueue('mail', 'Mail', [7, 'x', { a: null }]);
  assert.match(id, /^[0-9a-f]{32}$/);
  const [raw] = await r.lrange('resque:queue:mail', 0, -1);
  assert.ok(raw.startsWith('{"class":"Mail","args":[7,"x",{"a":null}],"id":"'), raw);
  const doc = JSON.parse(raw);
  assert.deepEqual(Object.keys(doc), ['class', 'args', 'id', 'enqueued_at']);
  assert.equal(doc.id, id);
  assert.ok(Number.isInteger(doc.enqueued_at) && doc.enqueued_at >= before && doc.enqueued_at <= Date.now());
  assert.deepEqual(await r.smembers('resque:queues'), ['mail']);
  assert.deepEqual(await r.lrange('resque:jobwire:wake:mail', 0, -1), ['1']);
  assert.deepEqual(await r.lrange('resque:jobwire:wake-new-queue', 0, -1), ['1']);
});

test('big integers and floats are written exactly', { timeout: 60000 }, async () => {
  await client.enqueue('big', 'Big', [9223372036854775807n, -9223372036854775808n, 0.1, 1e300]);
  const [raw] = await server.redis.lrange('resque:queue:big', 0, -1);
  assert.ok(raw.includes('"args":[9223372036854775807,-9223372036854775808,0.1,1e+300]'), raw);
});

test('bulk enqueue: many payloads, at most 1000 per call, order kept', { timeout: 60000 }, async () => {
  const jobs = Array.from({ length: 2500 }, (_, i) => ({ class: 'Bulk', args: [i] }));
  const ids = await client.enqueueMany('bulk', jobs);
  assert.equal(ids.length, 2500);
  assert.equal(new Set(ids).size, 2500);
  const all = await server.redis.lrange('resque:queue:bulk', 0, -1);
  assert.equal(all.length, 2500);
  all.forEach((raw, i) => assert.deepEqual(JSON.parse(raw).args, [i]));
  assert.deepEqual(await server.redis.lrange('resque:jobwire:wake:bulk', 0, -1), ['1']);
});

test('invalid payloads are rejected and nothing is pushed', { timeout: 60000 }, async () => {
  const r = server.redis;
  await assert.rejects(client.enqueue('inv', '', []), InvalidPayloadError);
  await assert.rejects(client.enqueue('inv', 'X', 'not-an-array'), /args must be array/);
  await assert.rejects(client.enqueue('inv', 42, []), /class must be string/);
  await assert.rejects(client.enqueue('inv', 'x'.repeat(1025), []), InvalidPayloadError);
  // one bad job in a batch: the whole batch is refused
  await assert.rejects(client.enqueueMany('inv', [{ class: 'Ok' }, { class: '' }]), InvalidPayloadError);
  await assert.rejects(client.enqueue('bad:queue', 'X', []), /invalid queue name/);
  assert.equal(await r.exists('resque:queue:inv'), 0);
  assert.equal(await r.sismember('resque:queues', 'inv'), 0);
  assert.throws(() => buildPayload('X', [], { id: '' }), /id must NOT have fewer than 1 characters/);
});

test('info: queues and sizes, processed, failed, workers', { timeout: 60000 }, async () => {
  const r = server.redis;
  await r.set('resque:stat:processed', '12');
  await r.set('resque:stat:failed', '3');
  await r.sadd('resque:workers', 'h:1:a', 'h:2:b');
  const info = await client.info();
  assert.equal(info.queues.mail, 1);
  assert.equal(info.queues.bulk, 2500);
  assert.equal(info.processed, 12);
  assert.equal(info.failed, 3);
  assert.equal(info.workers, 2);
  assert.deepEqual(await client.workers(), ['h:1:a', 'h:2:b']);
});

test('failure records of every writer are read', { timeout: 60000 }, () => {
  const jobwire = parseFailure('{"failed_at":"2026/11/29 08:00:00 UTC","payload":{"class":"A","args":[]},"exception":"Error","error":"x","backtrace":["at a"],"worker":"h:1:q","queue":"q"}');
  assert.equal(jobwire.exception, 'Error');
  assert.deepEqual(jobwire.backtrace, ['at a']);
  const nodeResque = parseFailure('{"worker":"h:1","queue":"q","payload":{"class":"A","queue":"q","args":[]},"error":"x","backtrace":null,"failed_at":"Sun Nov 29 2026 08:00:00 GMT+0000 (Coordinated Universal Time)"}');
  assert.equal(nodeResque.exception, null);
  assert.deepEqual(nodeResque.backtrace, []);
  assert.equal(nodeResque.worker, 'h:1');
  assert.equal(parseFailure('garbage').valid, false);
});
