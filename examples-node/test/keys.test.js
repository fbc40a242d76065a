import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { keys, buildKey, TEMPLATES, isValidQueueName } from '../lib/keys.js';
import { specPath, readSpecJson } from '../lib/spec.js';

const vectors = (name) => JSON.parse(readFileSync(specPath('..', 'conformance', 'vectors', 'v1', name), 'utf8'));

test('the templates are spec/keys.json, and nothing more', { timeout: 60000 }, () => {
  assert.deepEqual({ ...TEMPLATES }, readSpecJson('keys.json').templates);
});

test('the shared key vectors (conformance/vectors/v1/keys.json)', { timeout: 60000 }, () => {
  const { cases } = vectors('keys.json');
  assert.ok(cases.length >= 22);
  for (const c of cases) {
    const got = buildKey(c.template, { ns: c.ns, queue: c.queue, worker_id: c.worker_id, day: c.day });
    assert.equal(got, c.key, c.id);
  }
});

test('bound key builder', { timeout: 60000 }, () => {
  const k = keys();
  const id = 'web1:4242:high,low';
  assert.equal(k.queues(), 'resque:queues');
  assert.equal(k.queue('high'), 'resque:queue:high');
  assert.equal(k.workerRecord(id), 'resque:worker:web1:4242:high,low');
  assert.equal(k.workerStarted(id), 'resque:worker:web1:4242:high,low:started');
  assert.equal(k.heartbeats(), 'resque:workers:heartbeat');
  assert.equal(k.statProcessedWorker(id), 'resque:stat:processed:web1:4242:high,low');
  assert.equal(k.pauseAll(), 'resque:pause-all-workers');
  assert.equal(k.inflight(id), 'resque:jobwire:inflight:web1:4242:high,low');
  assert.equal(k.control(id), 'resque:jobwire:control:web1:4242:high,low');
  assert.equal(k.wake('high'), 'resque:jobwire:wake:high');
  assert.equal(k.wakeNewQueue(), 'resque:jobwire:wake-new-queue');
  assert.equal(k.minutes('2026-11-29'), 'resque:jobwire:minutes:2026-11-29');
  assert.equal(k.conformanceEcho(), 'resque:jobwire:conformance:echo');
  assert.equal(keys('{app}').queue('q'), '{app}:queue:q');
  assert.throws(() => k.queue(''), /non-empty/);
  assert.throws(() => buildKey('nope'), /unknown key template/);
});

test('queue names', { timeout: 60000 }, () => {
  for (const ok of ['high', 'a-b_c.d', 'ü', 'x'.repeat(255)]) assert.ok(isValidQueueName(ok), ok);
  for (const bad of ['', 'a:b', 'a*', 'a,b', 'a b', 'a\tb', 'a\u0001', 'x'.repeat(256), 'é'.repeat(128), '\ud800']) {
    assert.ok(!isValidQueueName(bad), JSON.stringify(bad));
  }
});
