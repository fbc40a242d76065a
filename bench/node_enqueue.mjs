// Enqueue rate of jobwire's Node client and of real node-resque, one job per call, on one Redis.
// node bench/node_enqueue.mjs REDIS_URL N  → prints {"jobwire-node": rate, "node-resque": rate}
import { createRequire } from 'node:module';

const require = createRequire(new URL('../examples-node/package.json', import.meta.url));
const { Queue } = require('node-resque');
const { Client } = await import(new URL('../examples-node/index.js', import.meta.url));

const [url, n] = [process.argv[2], Number(process.argv[3] ?? 5000)];
const u = new URL(url);
const rates = {};

const client = new Client({ redisUrl: url, namespace: 'bench-node' });
let start = process.hrtime.bigint();
for (let i = 0; i < n; i++) await client.enqueue('q', 'jobwire.Noop', [i]);
rates['jobwire-node'] = n / (Number(process.hrtime.bigint() - start) / 1e9);
await client.close();

const queue = new Queue({ connection: { host: u.hostname, port: Number(u.port), namespace: 'bench-nr' } });
await queue.connect();
start = process.hrtime.bigint();
for (let i = 0; i < n; i++) await queue.enqueue('q', 'jobwire.Noop', [i]);
rates['node-resque'] = n / (Number(process.hrtime.bigint() - start) / 1e9);
await queue.end();
process.stdout.write(JSON.stringify(rates));
