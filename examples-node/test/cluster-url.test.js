// protocol.md 15.1: a cluster URL (?cluster=1) names any node of a Redis Cluster, whose only
// database is 0. One naming another is refused before connecting: bad usage, exit status 2
// (spec/options.json exit_codes), as in Python and C.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isClusterUrl, parseClusterUrl, checkRedisUrl } from '../lib/cluster.js';
import { workerConfig, ConfigError } from '../lib/config.js';
import { spawnNode, killProc } from './helpers.js';

const BAD = ['redis://127.0.0.1:1/3?cluster=1', 'redis://127.0.0.1:1/?db=2&cluster=true'];

test('cluster URLs: database 0 or none is accepted, any other refused', () => {
  assert.ok(isClusterUrl('redis://h:1/0?cluster=1') && isClusterUrl('redis://h:1?cluster=true'));
  assert.ok(!isClusterUrl('redis://h:1/3') && !isClusterUrl('redis://h:1/?cluster=0'));
  assert.equal(parseClusterUrl('redis://h:7000/0?cluster=1').port, 7000);
  assert.doesNotThrow(() => checkRedisUrl('redis://h:7000/?db=0&cluster=1'));
  assert.doesNotThrow(() => checkRedisUrl('redis://h:7000/3')); // a single Redis has 16
  for (const url of BAD) assert.throws(() => checkRedisUrl(url), /only database 0/, url);
});

test('the worker configuration refuses a cluster URL naming a database', () => {
  for (const url of BAD) assert.throws(() => workerConfig(['--queues', 'a', '--redis-url', url], {}), ConfigError, url);
});

for (const [script, args] of [['worker.js', ['--queues', 'a']], ['enqueue.js', ['q', 'C']]]) {
  test(`${script} exits 2 for a cluster URL naming a database, before connecting`, { timeout: 20000 }, async () => {
    const p = spawnNode(script, ['--redis-url', BAD[0], ...args]);
    try {
      const { code } = await p.exited;
      assert.equal(code, 2, p.output());
      assert.match(p.output(), /only database 0/);
    } finally {
      await killProc(p);
    }
  });
}
