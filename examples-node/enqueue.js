#!/usr/bin/env node
// node examples-node/enqueue.js QUEUE CLASS [JSON_ARG ...] [--redis-url URL] [--namespace NS] [--at TIME | --in SECONDS]
// Enqueues one job with enqueue.lua (or, with --at/--in, delay.lua: protocol.md 14.2) and prints its id.
import { parseArgs } from 'node:util';
import { Client } from './lib/client.js';
import { parseJson, DEFAULT_REDIS_URL } from './lib/util.js';
import { packageVersion } from './lib/spec.js';

const USAGE = 'usage: node enqueue.js QUEUE CLASS [JSON_ARG ...] [--redis-url URL] [--namespace NS]\n' +
  '  [--at TIME (ISO 8601, UTC unless it has an offset, or Unix seconds) | --in SECONDS]\n' +
  '  [--wait-replicas N [--wait-timeout-ms MS]] (durable: succeed once N replicas have it)\n       node enqueue.js --version | --help';
let values;
let positionals;
try {
  ({ values, positionals } = parseArgs({
    options: {
      'redis-url': { type: 'string' }, namespace: { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' },
      at: { type: 'string' }, in: { type: 'string' }, 'wait-replicas': { type: 'string' }, 'wait-timeout-ms': { type: 'string' },
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
/** --at TIME / --in SECONDS as ms since the epoch, null for neither; exits 2 on bad input. */
function dueMs() {
  if (values.at !== undefined && values.in !== undefined) return usageError('give --at or --in, not both');
  if (values.in !== undefined) {
    const s = Number(values.in);
    if (values.in.trim() === '' || !Number.isFinite(s) || s < 0) return usageError(`--in needs seconds >= 0, got ${values.in}`);
    return Date.now() + Math.ceil(s * 1000);
  }
  if (values.at === undefined) return null;
  if (/^\d+(\.\d+)?$/.test(values.at)) return Math.ceil(Number(values.at) * 1000);
  const iso = /(Z|[+-]\d\d:?\d\d)$/i.test(values.at) ? values.at : `${values.at}Z`;
  const ms = Date.parse(iso);
  if (!/^\d{4}-\d\d-\d\d/.test(values.at) || Number.isNaN(ms)) return usageError(`--at is not ISO 8601 or Unix seconds: ${values.at}`);
  return ms;
}

function usageError(message) {
  process.stderr.write(`enqueue: ${message}\n${USAGE}\n`);
  process.exit(2);
}

/** A non-negative integer flag, or its default; exits 2 on bad input. */
function count(flag, dflt) {
  const raw = values[flag];
  if (raw === undefined) return dflt;
  if (!/^[0-9]+$/.test(raw)) return usageError(`--${flag} needs an integer >= 0, got ${raw}`);
  return Number(raw);
}

const at = dueMs();
let client;
try {
  client = new Client({
    redisUrl: values['redis-url'] ?? process.env.REDIS_URL ?? DEFAULT_REDIS_URL,
    namespace: values.namespace ?? process.env.JOBWIRE_NAMESPACE ?? 'resque',
    waitReplicas: count('wait-replicas', 0),
    waitTimeoutMs: count('wait-timeout-ms', 1000),
  });
} catch (err) { // a URL the connection refuses (a cluster URL naming a database but 0)
  process.stderr.write(`enqueue: ${err.message}\n`);
  process.exit(2);
}
try {
  const id = at === null ? await client.enqueue(queue, className, args) : await client.enqueueAt(queue, className, args, at);
  process.stdout.write(`${id}\n`);
} catch (err) {
  process.stderr.write(`enqueue: ${err.message}\n`);
  process.exitCode = 1;
} finally {
  await client.close();
}
