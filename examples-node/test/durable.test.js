// Durable enqueue (protocol.md 15.4): the script and WAIT in one pipeline. Against a Redis with
// no replica the job is pushed (after SCRIPT FLUSH too: EVAL replaces a missing script) and the
// client says it is not replicated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../lib/client.js';
import { NotReplicatedError } from '../lib/durable.js';
import { startRedis } from './helpers.js';

test('waitReplicas without a replica pushes the job and throws NotReplicatedError', { timeout: 30000 }, async () => {
  const server = await startRedis();
  const client = new Client({ redisUrl: server.url, waitReplicas: 1, waitTimeoutMs: 20 });
  try {
    await client.redis.script('FLUSH');
    await assert.rejects(client.enqueue('dq', 'jobwire.Echo', [1]), (err) => err instanceof NotReplicatedError
      && /0 of 1 replica/.test(err.message));
    assert.equal(await client.redis.llen('resque:queue:dq'), 1);
    const plain = new Client({ redis: client.redis });
    await plain.enqueue('dq', 'jobwire.Echo', [2]); // off by default: no WAIT, no error
    assert.equal(await client.redis.llen('resque:queue:dq'), 2);
  } finally {
    await client.close();
    await server.stop();
  }
});
