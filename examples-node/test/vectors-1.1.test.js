// The shared 1.1 vectors (conformance/vectors/v1): retry delays, next fire times and the firing
// rule, the 1.1 key templates. The same files drive Python's and C's unit tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';
import { fnv1a32, retryDelayMs, retries, policyFromMember, parseDefaultPolicy, NEVER } from '../lib/backoff.js';
import { nextFireMs, validateDefinition, decide, fireJobId, firePayload } from '../lib/schedule.js';
import { buildKey } from '../lib/keys.js';

const vectors = (name) => JSON.parse(readFileSync(path.join(ROOT, '..', 'conformance', 'vectors', 'v1', name), 'utf8'));

test('retry-delays.json: FNV-1a-32, outcome and delay of every case', { timeout: 60000 }, () => {
  const { cases } = vectors('retry-delays.json');
  assert.ok(cases.length >= 10);
  for (const c of cases) {
    const policy = policyFromMember(c.policy) ?? NEVER;
    assert.equal(fnv1a32(Buffer.from(`${c.job_id}:${c.attempt}`, 'utf8')), c.fnv1a32, c.id);
    assert.equal(retries(policy, c.attempt) ? 'retry' : 'fail', c.outcome, c.id);
    if (c.outcome === 'retry') assert.equal(retryDelayMs(policy, c.job_id, c.attempt), c.delay_ms, c.id);
  }
});

test('policies: a foreign retry member is ignored, --default-retry is checked', { timeout: 60000 }, () => {
  assert.equal(policyFromMember(3), null);
  assert.equal(policyFromMember({ max_attempts: 0 }), null);
  assert.equal(policyFromMember(false).max_attempts, 1);
  assert.equal(parseDefaultPolicy('{"max_attempts":3}').max_attempts, 3);
  assert.throws(() => parseDefaultPolicy('{"backoff":"linear"}'), TypeError);
  assert.throws(() => parseDefaultPolicy('nope'), TypeError);
});

test('schedule-next.json: next fire times, invalid definitions, the firing rule', { timeout: 60000 }, () => {
  const v = vectors('schedule-next.json');
  assert.equal(fireJobId(v.fire_job_id.name, v.fire_job_id.fire_ms), v.fire_job_id.id);
  const counts = { next: 0, invalid: 0, fire: 0 };
  for (const c of v.cases) {
    counts[c.type] += 1;
    if (c.type === 'invalid') {
      assert.throws(() => validateDefinition(c.definition), /invalid schedule/, c.id);
    } else if (c.type === 'next') {
      assert.equal(nextFireMs(validateDefinition(c.definition), c.after_ms), c.next_ms, c.id);
    } else {
      const d = decide(validateDefinition(c.definition), c.next_ms, c.now_ms);
      assert.deepEqual([d.fireMs, d.missed, d.lastMissedMs, d.nextMs], [c.fire_ms, c.missed, c.last_missed_ms, c.new_next_ms], c.id);
    }
  }
  assert.ok(counts.next > 10 && counts.invalid > 5 && counts.fire > 5, JSON.stringify(counts));
});

test('a fire payload has its members in the order of protocol.md 14.5', { timeout: 60000 }, () => {
  const p = JSON.parse(firePayload('nightly', { class: 'R', args: [1], queue: 'low', cron: '0 3 * * *', retry: false }, 1764576000000, 5));
  assert.deepEqual(Object.keys(p), ['class', 'args', 'id', 'enqueued_at', 'schedule', 'scheduled_for_ms', 'retry']);
  assert.equal(p.id, '7bb9473a69dd4267a18974ba9e7e01e6');
});

test('keys-1.1.json: every 1.1 key', { timeout: 60000 }, () => {
  const { cases } = vectors('keys-1.1.json');
  for (const c of cases) {
    const { id, template, key, ...params } = c;
    assert.equal(buildKey(template, params), key, id);
  }
});
