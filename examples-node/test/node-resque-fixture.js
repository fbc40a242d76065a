// The shared set-up of the node-resque interop tests: one private Redis, our Client, and a real
// node-resque Queue (npm) on it. Processes handed to track() get SIGTERM after each test, and the
// db is flushed, so each test starts from an empty Redis.
import { before, after, afterEach } from 'node:test';
import { Queue } from 'node-resque';
import { startRedis, killProc } from './helpers.js';
import { Client } from '../lib/client.js';

/** Register the hooks (call once, at a test file's top level); the returned object's fields are
 * set once `before` has run. */
export function useNodeResque() {
  const nr = {
    server: null,
    client: null,
    queue: null,
    procs: [],
    track(p) {
      nr.procs.push(p);
      return p;
    },
  };
  before(async () => {
    nr.server = await startRedis();
    nr.client = new Client({ redisUrl: nr.server.url });
    nr.queue = new Queue({ connection: { host: '127.0.0.1', port: nr.server.port, namespace: 'resque' } });
    nr.queue.on('error', () => {});
    await nr.queue.connect();
  }, { timeout: 30000 });
  after(async () => {
    await nr.queue?.end();
    await nr.client?.close();
    await nr.server?.stop();
  }, { timeout: 30000 });
  afterEach(async () => {
    for (const p of nr.procs) await killProc(p, 'SIGTERM');
    nr.procs = [];
    await nr.server.redis.flushdb();
  }, { timeout: 30000 });
  return nr;
}
