// The Node side of make bench: real BullMQ and node-resque workers and clients, and the enqueue
// rates of jobwire's Node client beside them. Run from bench/run.py:
//   node node_peers.mjs worker bullmq|node-resque CONCURRENCY   a worker on queue "bench"
//   node node_peers.mjs fill bullmq|node-resque N                echo, N-2 noops, echo
//   node node_peers.mjs probe bullmq|node-resque K               K latency probes (ms, JSON)
//   node node_peers.mjs enqueue N                                enqueue rates (JSON)
// REDIS_URL names the private Redis. Jobs: "noop" does nothing, "echo" RPUSHes to bench:echo
// over a connection the worker already holds (as the Python peers' echo does).
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import IORedis from 'ioredis';
import { Queue as ResqueQueue, Worker as ResqueWorker } from 'node-resque';

const ECHO_KEY = 'bench:echo';
const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0');
const bullConnection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
const resqueConnection = { host: url.hostname, port: Number(url.port), namespace: 'resque' };
const [mode, system, countText] = process.argv.slice(2);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Seconds since an hrtime.bigint() start. */
const since = (start) => Number(process.hrtime.bigint() - start) / 1e9;

/** A client for one system: add(name) sends one job; addBulk(names) many in one call (BullMQ). */
async function client(which) {
  if (which === 'bullmq') {
    const queue = new BullQueue('bench', { connection: bullConnection });
    await queue.waitUntilReady();
    return {
      add: (name) => queue.add(name, {}),
      addBulk: (names) => queue.addBulk(names.map((name) => ({ name, data: {} }))),
      close: () => queue.close(),
    };
  }
  const queue = new ResqueQueue({ connection: resqueConnection });
  await queue.connect();
  return { add: (name) => queue.enqueue('bench', name, []), close: () => queue.end() };
}

/** Run a worker until SIGTERM. */
async function worker(which, concurrency) {
  const echo = new IORedis(bullConnection);
  let stop;
  if (which === 'bullmq') {
    const w = new BullWorker('bench', async (job) => {
      if (job.name === 'echo') await echo.rpush(ECHO_KEY, '1');
    }, { connection: bullConnection, concurrency });
    stop = () => w.close();
  } else {
    // node-resque polls: timeout is the sleep after an empty poll (5 ms: its latency is usable).
    const jobs = { noop: { perform: async () => {} }, echo: { perform: async () => { await echo.rpush(ECHO_KEY, '1'); } } };
    const w = new ResqueWorker({ connection: resqueConnection, queues: ['bench'], timeout: 5 }, jobs);
    await w.connect();
    w.start();
    stop = () => w.end();
  }
  process.once('SIGTERM', async () => { await stop(); echo.disconnect(); process.exit(0); });
}

async function fill(which, n) {
  const c = await client(which);
  await c.add('echo');
  const names = Array.from({ length: n - 2 }, () => 'noop');
  if (c.addBulk) for (let i = 0; i < names.length; i += 1000) await c.addBulk(names.slice(i, i + 1000));
  else for (const name of names) await c.add(name);
  await c.add('echo');
  await c.close();
}

async function probe(which, k) {
  const c = await client(which);
  const r = new IORedis(bullConnection);
  await r.ping();
  const values = [];
  for (let i = 0; i < k; i++) {
    await sleep(15); // let the worker go idle and block again
    const start = process.hrtime.bigint();
    await c.add('echo');
    if (!(await r.blpop(ECHO_KEY, 10))) throw new Error('a latency probe job was not run within 10 s');
    values.push(since(start) * 1000);
  }
  process.stdout.write(JSON.stringify(values));
  await c.close();
  r.disconnect();
}

async function enqueue(n) {
  const { Client } = await import(new URL('../../examples-node/index.js', import.meta.url));
  const rates = {};
  const jw = new Client({ redisUrl: url.href, namespace: 'bench-node' });
  await jw.enqueue('q', 'jobwire.Noop', []); // connect and load the script first
  let start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await jw.enqueue('q', 'jobwire.Noop', [i]);
  rates['jobwire-node one by one'] = n / since(start);
  start = process.hrtime.bigint();
  for (let i = 0; i < n * 4; i += 1000) {
    await jw.enqueueMany('q', Array.from({ length: 1000 }, (_, j) => ({ class: 'jobwire.Noop', args: [i + j] })));
  }
  rates['jobwire-node bulk'] = (n * 4) / since(start);
  await jw.close();
  for (const which of ['node-resque', 'bullmq']) {
    const c = await client(which);
    await c.add('noop');
    start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await c.add('noop');
    rates[`${which} one by one`] = n / since(start);
    if (c.addBulk) {
      start = process.hrtime.bigint();
      for (let i = 0; i < n * 4; i += 1000) await c.addBulk(Array.from({ length: 1000 }, () => 'noop'));
      rates[`${which} addBulk bulk`] = (n * 4) / since(start);
    }
    await c.close();
  }
  process.stdout.write(JSON.stringify(rates));
}

const count = Number(countText ?? 0);
if (mode === 'worker') await worker(system, count || 1);
else if (mode === 'fill') await fill(system, count);
else if (mode === 'probe') await probe(system, count);
else if (mode === 'enqueue') await enqueue(Number(system));
else { process.stderr.write('usage: node_peers.mjs worker|fill|probe|enqueue ...\n'); process.exit(2); }
