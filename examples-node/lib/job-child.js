// The child process of the fork runner (lib/job-runner.js): loads the job modules once, then runs
// one job at a time when its master asks, and reports each outcome over the IPC channel.
//
// The master decides everything the protocol cares about (settling, kills, timeouts, signals);
// this process only runs handlers. It ignores the stop signals a terminal sends to the whole
// process group, so that only its master ends it (with SIGKILL), and it exits when the master
// goes away (PR_SET_PDEATHSIG through setpriv, or the IPC channel closing).
import { parseJson, needsLosslessParse, connect } from './util.js';
import { isClusterUrl } from './cluster.js';
import { keys as keyBuilder } from './keys.js';
import { describeError } from './errors.js';
import { stderrLogger } from './log.js';
import { Registry, defaultRegistry } from './registry.js';

const config = JSON.parse(process.argv[2] ?? '{}');
const log = stderrLogger(config.logLevel);
const handlers = new Map();
const k = keyBuilder(config.namespace);
let redis = null;

/** A registry-like target for the modules' register(target) (lib/conformance.js, --import modules). */
const target = {
  register(name, fn) {
    if (typeof fn !== 'function') throw new TypeError(`handler for ${name} must be a function`);
    handlers.set(name, fn);
    return this;
  },
};

/** Imports each job module and lets it register its handlers: through register(registry), or
 * job() on the process-wide default registry (lib/registry.js), as in-process. A Registry wraps
 * handlers given as objects with perform(), so both modes accept the same modules. */
async function loadModules(modules) {
  const registry = new Registry();
  for (const spec of modules) {
    const mod = await import(spec);
    if (typeof mod.register === 'function') await mod.register(registry);
  }
  registry.applyTo(target);
  defaultRegistry.applyTo(target);
}

/** This process's own connection, for the jobs' ctx.redis. */
function jobRedis() {
  return connect(config.redisUrl, { onError: (err) => log.debug(`job redis: ${err.message}`) });
}

/** The job context, as in-process: `this` of the handler. Redis is this process's own connection. */
function context(job, args) {
  return {
    id: job.jobId, className: job.className, queue: job.queue, token: job.token, args, payload: job.payload,
    worker: config.workerId, pid: process.pid, keys: k, log, attempt: job.attempt, // attempt: protocol.md 14.4
    get redis() {
      redis ??= jobRedis();
      return redis;
    },
  };
}

/** Runs one job; the outcome as a plain object for process.send. */
async function run(job) {
  const handler = handlers.get(job.className);
  if (!handler) {
    // notRetried: a protocol failure (protocol.md 14.4 "Which failures"), settled as in 1.0
    return { ok: false, notRetried: true, error: { exception: 'jobwire.UnknownClass', error: `no handler registered for class ${JSON.stringify(job.className)}`, backtrace: [] } };
  }
  try {
    const args = (needsLosslessParse(job.payload) ? parseJson(job.payload) : JSON.parse(job.payload)).args ?? [];
    const result = await handler.apply(context(job, args), args);
    if (result instanceof Error) throw result;
    return { ok: true };
  } catch (err) {
    return { ok: false, error: describeError(err) };
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGHUP']) process.on(sig, () => {});
process.on('disconnect', () => process.exit(0));
process.on('unhandledRejection', (err) => log.error(`job child: unhandled rejection: ${err?.stack ?? err}`));
process.on('uncaughtException', (err) => log.error(`job child: uncaught exception (keeps going): ${err?.stack ?? err}`));
try {
  process.title = `jobwire-node/resque-1: job child of ${process.ppid}`;
} catch { /* not settable */ }

process.on('message', (msg) => {
  if (msg?.type !== 'run') return;
  run(msg).then((outcome) => {
    if (process.connected) process.send({ type: 'done', seq: msg.seq, ...outcome });
  });
});

// On a cluster a new connection first reads the slot map through the URL's node, which may be
// busy for seconds with another namespace's long script: connect now, while the modules load and
// the master registers, so that the first job's ctx.redis does not pay for it. (On a single
// Redis the connection stays lazy: it costs one round trip.)
if (config.redisUrl && isClusterUrl(config.redisUrl)) redis = jobRedis();

try {
  await loadModules(config.modules ?? []);
  process.send({ type: 'ready', classes: [...handlers.keys()] });
} catch (err) {
  process.send({ type: 'fatal', error: `cannot load the job modules: ${err?.stack ?? err}` }, () => process.exit(2));
}
