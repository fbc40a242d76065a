#!/usr/bin/env node
// Runs a REAL node-resque Worker (not jobwire's) with the jobs jobwire.Echo, jobwire.Noop and jobwire.Fail.
// node interop/node-resque-worker.js --queues a,b [--namespace resque] [--redis-url URL] [--timeout 50]
import { Worker } from 'node-resque';
import { interopOptions } from './common.js';

const USAGE = 'usage: node-resque-worker.js --queues a,b [--namespace NS] [--redis-url URL] [--timeout MS]';
const { values, connection } = interopOptions(USAGE);
const queues = (values.queues ?? process.env.JOBWIRE_QUEUES ?? '').split(',').map((q) => q.trim()).filter(Boolean);
if (queues.length === 0) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}

const jobs = {
  'jobwire.Echo': {
    perform: async function echo(...args) {
      const job = this.job ?? {};
      const record = JSON.stringify({
        id: typeof job.id === 'string' ? job.id : null,
        args,
        worker: `${this.name}:${this.stringQueues()}`,
        queue: this.queue,
        pid: process.pid,
        impl: 'node-resque',
      });
      await this.connection.redis.rpush(this.connection.key('jobwire', 'conformance', 'echo'), record);
    },
  },
  'jobwire.Noop': {
    perform: async () => {},
  },
  'jobwire.Fail': {
    perform: async (message) => {
      throw new Error(message === undefined ? '' : String(message));
    },
  },
};

const worker = new Worker({ connection, queues, timeout: Number(values.timeout ?? 50) }, jobs);
worker.on('error', (err) => process.stderr.write(`node-resque worker error: ${err?.message ?? err}\n`));
worker.on('failure', (queue, job, failure) => process.stderr.write(`node-resque: ${job?.class} failed: ${failure?.message}\n`));
await worker.connect();
worker.start();
process.stderr.write(`node-resque worker ${worker.name} started on ${queues.join(',')}\n`);

let ending = false;
async function stop(signal) {
  if (ending) return;
  ending = true;
  process.stderr.write(`node-resque worker: ${signal}, ending\n`);
  try {
    await worker.end();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
