#!/usr/bin/env node
// Enqueues one job with a REAL node-resque Queue.
// node interop/node-resque-enqueue.js QUEUE CLASS [JSON_ARG ...] [--namespace resque] [--redis-url URL]
import { Queue } from 'node-resque';
import { interopOptions } from './common.js';

const USAGE = 'usage: node-resque-enqueue.js QUEUE CLASS [JSON_ARG ...] [--namespace NS] [--redis-url URL]';
const { positionals, connection } = interopOptions(USAGE, { positionals: true });
if (positionals.length < 2) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
const [queueName, className, ...rawArgs] = positionals;
let args;
try {
  args = rawArgs.map((a) => JSON.parse(a));
} catch (err) {
  process.stderr.write(`an argument is not JSON: ${err.message}\n`);
  process.exit(2);
}
const queue = new Queue({ connection });
queue.on('error', (err) => process.stderr.write(`node-resque queue error: ${err?.message ?? err}\n`));
await queue.connect();
try {
  await queue.enqueue(queueName, className, args);
} finally {
  await queue.end();
  // node-resque leaves a connection it was given open (a Cluster one, interop/common.js)
  connection.redis?.disconnect();
}
