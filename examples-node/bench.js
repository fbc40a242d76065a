#!/usr/bin/env node
// Measures no-op throughput (20,000 pre-enqueued jobwire.Noop jobs drained at concurrency 1 and
// 8, jobs in child processes (default) and in-process (--no-fork)), enqueue rates and the idle RSS
// of a worker process (with its job children), on a private redis-server.
// node bench.js [--jobs 20000]
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { startRedis, spawnWorker, killProc, waitFor, sleep } from './test/helpers.js';
import { Client } from './lib/client.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '20000' } } });
const N = Number(values.jobs);
const server = await startRedis();
const r = server.redis;
const client = new Client({ redisUrl: server.url });
const results = {};
const noops = (n) => Array.from({ length: n }, () => ({ class: 'jobwire.Noop', args: [] }));

try {
  // enqueue rates
  let t = performance.now();
  for (let i = 0; i < 2000; i++) await client.enqueue('single', 'jobwire.Noop', []);
  results.enqueue_one_per_call_per_s = Math.round(2000 / ((performance.now() - t) / 1000));
  t = performance.now();
  await client.enqueueMany('bulk', noops(N));
  results.enqueue_bulk_1000_per_call_per_s = Math.round(N / ((performance.now() - t) / 1000));
  await r.flushdb();

  for (const [mode, flags] of [['fork', []], ['inline', ['--no-fork']]]) for (const concurrency of [1, 8]) {
    await client.enqueueMany('bench', noops(N));
    const p = spawnWorker(server.url, 'bench', ['--concurrency', String(concurrency), '--block-timeout-ms', '1000',
      '--heartbeat-ms', '5000', '--lease-ms', '30000', ...flags], { env: { JOBWIRE_LOG_LEVEL: 'warn' } });
    await waitFor(async () => (await r.scard('resque:workers')) === concurrency, { what: 'registered', interval: 5 });
    t = performance.now();
    await waitFor(async () => Number(await r.get('resque:stat:processed')) >= N, { what: 'drained', interval: 10, timeout: 300000 });
    const secs = (performance.now() - t) / 1000;
    results[`${mode}_noop_jobs_per_s_concurrency_${concurrency}`] = Math.round(N / secs);
    results[`${mode}_drain_${N}_s_concurrency_${concurrency}`] = Number(secs.toFixed(2));
    if (concurrency === 1) {
      await sleep(2000);
      results[`${mode}_rss_mib_after_drain`] = rss(p.pid);
    }
    await killProc(p, 'SIGTERM');
    await r.flushdb();
  }

  for (const [mode, flags] of [['fork', []], ['inline', ['--no-fork']]]) {
    const idle = spawnWorker(server.url, 'idle', ['--heartbeat-ms', '5000', '--lease-ms', '30000', ...flags],
      { env: { JOBWIRE_LOG_LEVEL: 'warn' } });
    await waitFor(async () => (await r.scard('resque:workers')) === 1, { what: 'idle registered' });
    await sleep(3000);
    results[`${mode}_idle_rss_mib_concurrency_1`] = rss(idle.pid);
    await killProc(idle, 'SIGTERM');
    await r.flushdb();
  }
  results.node = process.version;
  results.cpus = os.cpus().length;
  console.log(JSON.stringify(results, null, 2));
} finally {
  await client.close();
  await server.stop();
}

/** RSS in MiB of pid and its children (the job children in fork mode). */
function rss(pid) {
  let kb = 0;
  for (const p of [pid, ...childrenOf(pid)]) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
    kb += Number(m[1]);
  }
  return Number((kb / 1024).toFixed(1));
}

function childrenOf(pid) {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((e) => {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
    } catch {
      return false;
    }
  }).map(Number);
}
