// Test helpers: a private redis-server per test file, spawned worker processes, polling.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Redis from 'ioredis';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REDIS_SERVER = process.env.REDIS_SERVER || '/usr/bin/redis-server';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `fn` until it returns a truthy value; returns that value. The default wait is long: a
 * loaded CI machine starts a fork-mode worker (two Node processes) slowly. */
export async function waitFor(fn, { timeout = 30000, interval = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last?.message ?? JSON.stringify(last)})`);
    await sleep(interval);
  }
}

/** Starts redis-server on a free port; returns {port, url, redis (an ioredis client), stop(), restart()}.
 * `args` go after the defaults and so override them (e.g. AOF for a restart that keeps data). */
export async function startRedis({ args = [] } = {}) {
  const port = await freePort();
  const server = { port, url: `redis://127.0.0.1:${port}/0`, proc: null };
  server.start = async () => {
    server.proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      ...args], { stdio: 'ignore' });
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => {});
    try {
      await waitFor(async () => {
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          probe.disconnect();
          return false;
        }
      }, { timeout: 10000, what: `redis-server on port ${port}` });
    } finally {
      probe.disconnect();
    }
  };
  server.kill = async () => {
    const p = server.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    process.kill(p.pid, 'SIGKILL');
    await exited;
  };
  server.restart = async () => {
    await server.kill();
    await server.start();
  };
  server.stop = async () => {
    server.redis?.disconnect();
    await server.kill();
  };
  await server.start();
  server.redis = new Redis(server.url, { maxRetriesPerRequest: null });
  server.redis.on('error', () => {});
  return server;
}

/** Spawns a node script from examples-node; returns {proc, output(), exited}. */
export function spawnNode(script, args = [], { env = {} } = {}) {
  const proc = spawn(process.execPath, [path.join(ROOT, script), ...args], {
    cwd: ROOT,
    env: { ...process.env, JOBWIRE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return { proc, pid: proc.pid, output: () => out, exited };
}

/** Spawns our worker.js with fast test timings. */
export function spawnWorker(url, queues, extra = [], opts = {}) {
  return spawnNode('worker.js', ['--queues', queues, '--redis-url', url, '--block-timeout-ms', '200',
    '--heartbeat-ms', '300', '--lease-ms', '1500', ...extra], opts);
}

/** Kills a spawned process if still running (by pid) and waits for it. */
export async function killProc(p, signal = 'SIGKILL') {
  if (p.proc.exitCode === null && p.proc.signalCode === null) {
    try { process.kill(p.pid, signal); } catch { /* gone */ }
  }
  await p.exited;
}

/** Parsed echo records. */
export async function echoes(redis, ns = 'resque') {
  return (await redis.lrange(`${ns}:jobwire:conformance:echo`, 0, -1)).map((s) => JSON.parse(s));
}

/** Parsed failure records. */
export async function failures(redis, ns = 'resque') {
  return (await redis.lrange(`${ns}:failed`, 0, -1)).map((s) => JSON.parse(s));
}

/** The shared wire-fault proxy (tests/fault_proxy.py) in front of 127.0.0.1:targetPort; returns
 * {port, url, command(line) -> its answer, stop()}. One proxy for every language's fault tests. */
export async function startFaultProxy(targetPort) {
  const script = path.join(ROOT, '..', 'tests', 'fault_proxy.py');
  const proc = spawn(process.env.PYTHON || 'python3', [script, '--target', String(targetPort)],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiting = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) {
      const line = buf.slice(0, i);
      if (waiting.length) waiting.shift()(line); else lines.push(line);
    }
  });
  const nextLine = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiting.push(r)));
  const exited = new Promise((r) => proc.once('exit', r));
  const first = await nextLine();
  const port = Number(/^port (\d+)$/.exec(first)?.[1]);
  if (!port) throw new Error(`fault_proxy.py did not start: ${first}`);
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    command: (line) => { proc.stdin.write(`${line}\n`); return nextLine(); },
    stop: async () => { proc.stdin.end(); await exited; },
  };
}
