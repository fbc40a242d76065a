#!/usr/bin/env node
// Runs a REAL node-resque Scheduler (leader lock, polling), which moves due delayed jobs from
// resque-scheduler's keys onto their queues, until SIGTERM or SIGINT.
// node interop/node-resque-scheduler.js [--namespace resque] [--redis-url URL] [--timeout 100]
import { Scheduler } from 'node-resque';
import { interopOptions } from './common.js';

const USAGE = 'usage: node-resque-scheduler.js [--namespace NS] [--redis-url URL] [--timeout MS]';
const { values, connection } = interopOptions(USAGE);
const scheduler = new Scheduler({ connection, timeout: Number(values.timeout ?? 100) });
scheduler.on('error', (err) => process.stderr.write(`node-resque scheduler error: ${err?.message ?? err}\n`));
scheduler.on('leader', () => process.stdout.write('leader\n'));
await scheduler.connect();
await scheduler.start();

async function stop() {
  await scheduler.end();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
