#!/usr/bin/env node
// node examples-node/enqueue.js QUEUE CLASS [JSON_ARG ...] [--redis-url URL] [--namespace NS]
// Enqueues one job with enqueue.lua and prints its id.
import { parseArgs } from 'node:util';
import { Client } from './lib/client.js';
import { parseJson, DEFAULT_REDIS_URL } from './lib/util.js';
import { packageVersion } from './lib/spec.js';

const USAGE = 'usage: node enqueue.js QUEUE CLASS [JSON_ARG ...] [--redis-url URL] [--namespace NS]\n       node enqueue.js --version | --help';
let values;
let positionals;
try {
  ({ values, positionals } = parseArgs({
    options: {
      'redis-url': { type: 'string' }, namespace: { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' },
    },
    allowPositionals: true,
  }));
} catch (err) {
  process.stderr.write(`${err.message}\n${USAGE}\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (values.version) {
  process.stdout.write(`jobwire-node-enqueue ${packageVersion()}\n`);
  process.exit(0);
}
if (positionals.length < 2) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
const [queue, className, ...rawArgs] = positionals;
let args;
try {
  args = rawArgs.map((a) => parseJson(a));
} catch (err) {
  process.stderr.write(`enqueue: an argument is not JSON: ${err.message}\n`);
  process.exit(2);
}
const client = new Client({
  redisUrl: values['redis-url'] ?? process.env.REDIS_URL ?? DEFAULT_REDIS_URL,
  namespace: values.namespace ?? process.env.JOBWIRE_NAMESPACE ?? 'resque',
});
try {
  const id = await client.enqueue(queue, className, args);
  process.stdout.write(`${id}\n`);
} catch (err) {
  process.stderr.write(`enqueue: ${err.message}\n`);
  process.exitCode = 1;
} finally {
  await client.close();
}
