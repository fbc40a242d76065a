// The shared conformance vectors that need no Redis: job-schema verdicts, the queue-name and
// --queues rules and the Redis URL (conformance/vectors/v1), run through this package's own code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { specPath } from '../lib/spec.js';
import { jobPayloadError } from '../lib/validate.js';
import { isValidQueueName } from '../lib/keys.js';
import { parseQueues, expandQueues } from '../lib/worker.js';
import { parseRedisUrl, InvalidRedisUrl } from '../lib/redis-url.js';

const vectors = (...name) => JSON.parse(readFileSync(specPath('..', 'conformance', 'vectors', 'v1', ...name), 'utf8'));

test('job-schema vectors: the validator agrees with every verdict', { timeout: 60000 }, () => {
  let n = 0;
  for (const group of vectors('schemas', 'job.json')) {
    for (const t of group.tests) {
      assert.equal(jobPayloadError(t.data) === null, t.valid, `${group.id}: ${t.description}`);
      n += 1;
    }
  }
  assert.ok(n >= 30, `only ${n} job-schema tests ran`);
});

test('queue-name vectors', { timeout: 60000 }, () => {
  for (const c of vectors('queue-names.json').cases.filter((x) => 'name' in x)) {
    assert.equal(isValidQueueName(c.name), c.valid, c.id);
  }
});

test('--queues vectors: grammar and expansion of *', { timeout: 60000 }, () => {
  for (const c of vectors('queue-names.json').cases.filter((x) => 'queues' in x)) {
    if (c.parsed === null) {
      assert.throws(() => parseQueues(c.queues), TypeError, c.id);
      continue;
    }
    const parsed = parseQueues(c.queues);
    assert.deepEqual(parsed, c.parsed, c.id);
    if (c.known) assert.deepEqual(expandQueues(parsed, c.known), c.expanded, c.id);
  }
});

test('redis-url vectors: parts of the valid ones, a usage error for the rest', () => {
  const parts = ['host', 'port', 'db', 'username', 'password', 'cluster'];
  for (const c of vectors('redis-urls.json').cases) {
    if (!c.valid) {
      assert.throws(() => parseRedisUrl(c.url), InvalidRedisUrl, c.id);
      continue;
    }
    const got = parseRedisUrl(c.url);
    assert.deepEqual(Object.fromEntries(parts.map((k) => [k, got[k]])), Object.fromEntries(parts.map((k) => [k, c[k]])), c.id);
  }
});
