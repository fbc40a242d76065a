// protocol.md 15.2's routing function against spec/routing-vectors.json, and the Client routing
// enqueues through the table in Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSpecJson } from '../lib/spec.js';
import { route, namespaces, BadRouteError, routedElsewhere, routedWarning } from '../lib/routing.js';
import { Client } from '../lib/client.js';
import { startRedis } from './helpers.js';

const vectors = readSpecJson('routing-vectors.json');

test('route() agrees with every vector of spec/routing-vectors.json', () => {
  assert.ok(vectors.cases.length >= 10);
  for (const c of vectors.cases) {
    if (c.error) assert.throws(() => route(c.home, c.routes, c.queue), BadRouteError, c.id);
    else assert.equal(route(c.home, c.routes, c.queue), c.namespace, c.id);
  }
});

test('namespaces() agrees with every vector of spec/routing-vectors.json', () => {
  for (const c of vectors.namespaces) assert.deepEqual(namespaces(c.home, c.routes), c.namespaces, c.id);
});

test('the client enqueues a routed queue into its group namespace, others home', { timeout: 30000 }, async () => {
  const server = await startRedis();
  const client = new Client({ redisUrl: server.url, namespace: '{app}' });
  try {
    await client.redis.hset('{app}:jobwire:routes', 'welcome', 'mail', 'broken', 'no good');
    await client.enqueue('welcome', 'jobwire.Echo', [1]);
    await client.enqueue('high', 'jobwire.Echo', [2]);
    assert.equal(await client.redis.llen('{app:mail}:queue:welcome'), 1);
    assert.equal(await client.redis.llen('{app}:queue:high'), 1);
    assert.equal(await client.redis.exists('{app}:queue:welcome'), 0);
    await assert.rejects(client.enqueue('broken', 'jobwire.Echo', []), BadRouteError);
    assert.deepEqual(await client.namespaces(), ['{app}', '{app:mail}']);
  } finally {
    await client.close();
    await server.stop();
  }
});

test('routedElsewhere() lists the queues a worker of home warns about (protocol.md 15.2)', () => {
  const table = { welcome: 'mail', broken: 'no good', high: '' };
  const found = routedElsewhere('{app}', table, ['high', 'welcome', '*', 'broken', 'low']);
  assert.deepEqual(found.map(([q]) => q), ['welcome', 'broken']);
  assert.equal(found[0][1], '{app:mail}');
  assert.match(found[1][1], /no group name/);
  assert.match(routedWarning('{app}', 'welcome', '{app:mail}'), /\{app:mail\}/);
});
