#!/usr/bin/env node
// A jobwire worker that speaks only gRPC to a gateway (spec/proto/jobwire/v1/worker.proto):
//   node examples-node/gateway-worker.js --gateway 127.0.0.1:7460 --queues a,b [standard flags]
// The gateway does the Redis side (registration, leases, work.lua); this process says hello,
// runs one job at a time per worker (--concurrency N opens N streams, ids <pid>+n), settles it,
// beats every --heartbeat-ms and handles the signals of protocol.md 7.5. $JOBWIRE_GATEWAY_TOKEN (or --token-file) is sent as a bearer token;
// --tls-ca PEM turns on TLS. --redis-url is accepted for symmetry and ignored.
import fs from 'node:fs';
import os from 'node:os';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { workerConfig, USAGE, ConfigError } from './lib/config.js';
import { describeError, parseQueues, stderrLogger } from './lib/worker.js';
import { conformanceHandlers } from './lib/conformance.js';
import { parseJson, needsLosslessParse, stringifyJson, sleep, backoffMs } from './lib/util.js';
import { jobPayloadError } from './lib/validate.js';
import { specPath, packageVersion } from './lib/spec.js';

const IMPL = 'node-gateway';
const FATAL = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION,
  grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.UNIMPLEMENTED]);
const log = stderrLogger();

/** Splits our own flags off argv; the rest are protocol.md 7.2's, parsed by lib/config.js. */
function parseArgv(argv) {
  const own = { gateway: process.env.JOBWIRE_GATEWAY || '127.0.0.1:7460', tokenFile: null, tlsCa: null,
    // only a namespace given explicitly is sent: otherwise the gateway's own applies
    namespaceGiven: argv.some((a) => a === '--namespace' || a.startsWith('--namespace=')) || !!process.env.JOBWIRE_NAMESPACE };
  const rest = [];
  const names = { '--gateway': 'gateway', '--token-file': 'tokenFile', '--tls-ca': 'tlsCa' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    if (names[flag]) own[names[flag]] = inline ?? argv[++i];
    else rest.push(argv[i]);
  }
  const config = workerConfig(rest);
  if (!config.help) {
    try {
      parseQueues(config.queues); // protocol.md 7.2's grammar, checked before any connection
    } catch (err) {
      throw new ConfigError(err.message);
    }
  }
  return { own, config };
}

/** The conformance classes of protocol.md 10; Echo goes through the gateway, not Redis. */
function handlersFor(worker) {
  const echo = (ctx) => worker.send({ conformanceEcho: { recordJson: stringifyJson({
    id: ctx.id, args: ctx.args, worker: ctx.worker, queue: ctx.queue, pid: process.pid, impl: IMPL }) } });
  return new Map(Object.entries({
    ...conformanceHandlers,
    'jobwire.Echo': async function jobwireEcho() { echo(this); },
    'jobwire.Sleep': async function jobwireSleep(ms) { await sleep(Math.max(0, Number(ms) || 0)); echo(this); },
  }));
}

class GatewayWorker {
  constructor(own, config, index) {
    this.config = config;
    this.pid = index ? `${process.pid}+${index}` : String(process.pid); // protocol.md 7.1: +n per worker
    this.namespace = own.namespaceGiven ? config.namespace : '';
    const { WorkerService } = grpc.loadPackageDefinition(protoLoader.loadSync(
      specPath('proto', 'jobwire', 'v1', 'worker.proto'),
      { includeDirs: [specPath('proto')], keepCase: false, longs: Number, oneofs: true })).jobwire.v1;
    const creds = own.tlsCa ? grpc.credentials.createSsl(fs.readFileSync(own.tlsCa)) : grpc.credentials.createInsecure();
    this.client = new WorkerService(own.gateway, creds, {
      'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
    const token = own.tokenFile ? fs.readFileSync(own.tokenFile, 'utf8').split('\n')[0].trim() : process.env.JOBWIRE_GATEWAY_TOKEN;
    this.metadata = new grpc.Metadata();
    if (token) this.metadata.set('authorization', `Bearer ${token}`);
    this.handlers = handlersFor(this);
    this.stream = null;
    this.epoch = 0; // one per stream: an outcome of an earlier stream is never sent on a later one
    this.running = null; // { token, epoch } of the job in hand
    this.stopping = null; // null, 'quit' (finish the job first) or 'term' (give it back now)
    this.paused = false;
    this.workerId = null;
  }

  send(msg) {
    if (this.stream && !this.stream.writableEnded) this.stream.write(msg);
  }

  /** Connects, says hello and serves the stream; resolves with its end status. */
  connect() {
    const c = this.config;
    this.epoch += 1;
    const epoch = this.epoch;
    const stream = this.stream = this.client.Work(this.metadata);
    stream.write({ hello: {
      host: os.hostname(), pid: this.pid, queues: parseQueues(c.queues), features: ['job-timeout'],
      impl: IMPL, implVersion: packageVersion(), namespace: this.namespace, leaseMs: c.leaseMs, heartbeatMs: c.heartbeatMs,
      blockTimeoutMs: c.blockTimeoutMs, maxDeaths: c.maxDeaths, maxPayloadBytes: c.maxPayloadBytes, mode: 'inline' } });
    if (this.paused) stream.write({ setPaused: { paused: true } });
    const beat = setInterval(() => this.send({ beat: {} }), c.heartbeatMs);
    return new Promise((resolve) => {
      stream.on('data', (msg) => this.onMessage(msg, epoch));
      stream.on('status', (status) => { clearInterval(beat); resolve(status); });
      stream.on('error', () => {}); // the status event carries the reason
    });
  }

  /** protocol.md 7.8: `ps` on this host shows what the worker does. */
  title(state) {
    process.title = `jobwire-${IMPL}/resque-1: ${state}`;
  }

  onMessage(msg, epoch) {
    if (msg.welcome) {
      this.workerId = msg.welcome.workerId;
      this.title(this.paused ? 'Paused' : `Waiting for ${parseQueues(this.config.queues).join(',')}`);
      log.info(`registered as ${this.workerId} through the gateway`);
    } else if (msg.job) {
      this.runJob(msg.job, epoch).catch((err) => log.error(`job: ${err.stack ?? err}`));
    } else if (msg.kill) {
      log.warn(`ignoring kill of ${msg.kill.token}: an in-process job cannot be killed`);
    } else if (msg.quit) {
      this.quit();
    }
  }

  /** Validates and runs one job (protocol.md 7.4), then settles it on the stream it came from. */
  async runJob({ token, queue, payload }, epoch) {
    this.running = { token, epoch };
    const text = Buffer.from(payload).toString('utf8');
    let fail = null;
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      fail = { type: 'jobwire.InvalidJSON', message: `payload is not valid JSON: ${err.message}` };
    }
    const invalid = fail ? null : jobPayloadError(doc);
    const handler = fail || invalid ? null : this.handlers.get(doc.class);
    if (invalid) fail = { type: 'jobwire.InvalidPayload', message: `payload does not match job.schema.json: ${invalid}` };
    else if (!fail && !handler) fail = { type: 'jobwire.UnknownClass', message: `no handler registered for class ${JSON.stringify(doc.class)}` };
    if (!fail) {
      this.title(`Processing ${queue} since ${Math.floor(Date.now() / 1000)} [${doc.class}]`);
      fail = await this.perform(handler, doc, text, queue);
      this.title(this.paused ? 'Paused' : `Waiting for ${parseQueues(this.config.queues).join(',')}`);
    }
    if (this.running?.token === token) this.running = null;
    if (epoch !== this.epoch || this.stopping === 'term') return; // recovered, or given back on leaving
    const leaveAfter = this.stopping === 'quit';
    this.send({ settle: { token, ...(fail ? { fail } : { ok: {} }), leaveAfter } });
    if (leaveAfter) this.stream.end();
  }

  async perform(handler, doc, text, queue) {
    const args = needsLosslessParse(text) ? parseJson(text).args ?? [] : doc.args ?? [];
    const ctx = { id: typeof doc.id === 'string' ? doc.id : null, className: doc.class, queue, args, worker: this.workerId, log };
    let timer;
    const job = Promise.resolve().then(() => handler.apply(ctx, args)).then(
      (r) => (r instanceof Error ? describe(r) : null), describe);
    const limit = this.config.jobTimeoutMs;
    const timeout = limit > 0 ? new Promise((resolve) => { timer = setTimeout(() => resolve({
      type: 'jobwire.Timeout', message: `job ran longer than ${limit} ms; an in-process job cannot be killed, its outcome is ignored` }), limit); })
      : new Promise(() => {});
    try {
      return await Promise.race([job, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  quit() {
    this.stopping = this.stopping ?? 'quit';
    if (!this.running) this.leave();
  }

  terminate() {
    this.stopping = 'term';
    this.leave();
  }

  leave() {
    this.title('Shutting down');
    this.send({ leave: {} });
    this.stream?.end();
    setTimeout(() => process.exit(0), 10000).unref(); // protocol.md 7.5: give up leaving after 10 s
  }

  setPaused(paused) {
    this.paused = paused;
    if (!this.running) this.title(paused ? 'Paused' : `Waiting for ${parseQueues(this.config.queues).join(',')}`);
    this.send({ setPaused: { paused } });
  }

  /** Serves streams until told to stop; reconnects with backoff when a stream breaks. */
  async run() {
    let attempt = 0;
    for (;;) {
      const status = await this.connect();
      if (this.stopping) return 0;
      if (FATAL.has(status.code)) {
        log.error(`gateway refused this worker: ${status.details}`);
        return 1;
      }
      attempt = this.workerId ? 0 : attempt + 1; // a stream that got as far as welcome resets the backoff
      this.workerId = null;
      this.running = null; // the gateway recovered the job in hand; its outcome is dropped
      const wait = backoffMs(attempt);
      log.warn(`stream ended (${grpc.status[status.code]}: ${status.details}); reconnecting in ${wait} ms`);
      await sleep(wait);
      if (this.stopping) return 0;
    }
  }
}

function describe(err) {
  const d = describeError(err);
  return { type: d.exception, message: d.error, frames: d.backtrace };
}

let parsed;
try {
  parsed = parseArgv(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`gateway-worker: ${err.message} (see --help)\n`); // one line: protocol.md 7.2
  process.exit(2);
}
if (parsed.config.help) {
  process.stdout.write(`--gateway HOST:PORT [--token-file F] [--tls-ca PEM]\n${USAGE}\n`);
  process.exit(0);
}
const n = parsed.config.concurrency ?? 1;
const workers = Array.from({ length: n }, (_, i) => new GatewayWorker(parsed.own, parsed.config, n > 1 ? i + 1 : undefined));
workers[0].title('Starting');
const each = (fn) => () => workers.forEach(fn);
const signals = {
  SIGQUIT: each((w) => w.quit()), SIGTERM: each((w) => w.terminate()), SIGINT: each((w) => w.terminate()),
  SIGUSR2: each((w) => w.setPaused(true)), SIGCONT: each((w) => w.setPaused(false)),
  SIGUSR1: () => log.warn('SIGUSR1: an in-process job cannot be killed; ignored'),
};
for (const [sig, fn] of Object.entries(signals)) process.on(sig, fn);
process.on('uncaughtException', (err) => log.error(`uncaught exception (worker keeps going): ${err?.stack ?? err}`));
process.exit(Math.max(...await Promise.all(workers.map((w) => w.run()))));
