import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { keys, buildKey, TEMPLATES, isValidQueueName } from '../lib/keys.js';
import { specPath } from '../lib/spec.js';

function templatesFromSpec() {
  const md = readFileSync(specPath('key-layout.md'), 'utf8');
  const section = md.split('## Key templates as data')[1];
  const rows = {};
  for (const line of section.split('\n')) {
    const m = /^\|\s*([a-z_]+)\s*\|\s*`([^`]+)`\s*\|$/.exec(line.trim());
    if (m) rows[m[1]] = m[2];
  }
  return rows;
}

test('every template matches key-layout.md exactly, and nothing more', { timeout: 60000 }, () => {
  const spec = templatesFromSpec();
  assert.ok(Object.keys(spec).length >= 20);
  assert.deepEqual({ ...TEMPLATES }, spec);
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
