// Worker configuration of protocol.md 7.2: flag first, then environment variable, then default.
import { parseArgs } from 'node:util';
import { DEFAULTS } from './worker.js';

const OPTIONS = [
  // [flag, env, option name, kind]
  ['queues', 'JOBWIRE_QUEUES', 'queues', 'string'],
  ['redis-url', 'REDIS_URL', 'redisUrl', 'string'],
  ['namespace', 'JOBWIRE_NAMESPACE', 'namespace', 'string'],
  ['concurrency', 'JOBWIRE_CONCURRENCY', 'concurrency', 'int'],
  ['heartbeat-ms', 'JOBWIRE_HEARTBEAT_MS', 'heartbeatMs', 'int'],
  ['lease-ms', 'JOBWIRE_LEASE_MS', 'leaseMs', 'int'],
  ['block-timeout-ms', 'JOBWIRE_BLOCK_TIMEOUT_MS', 'blockTimeoutMs', 'int'],
  ['max-deaths', 'JOBWIRE_MAX_DEATHS', 'maxDeaths', 'int'],
  ['job-timeout-ms', 'JOBWIRE_JOB_TIMEOUT_MS', 'jobTimeoutMs', 'int0'],
  ['max-payload-bytes', 'JOBWIRE_MAX_PAYLOAD_BYTES', 'maxPayloadBytes', 'int'],
];

export const USAGE = `usage: node worker.js --queues a,b [--import ./my-jobs.js ...] [options]
       node worker.js --version | --help
  --queues a,b             queues in priority order; * = every queue   (JOBWIRE_QUEUES)
  --import MODULE          import MODULE (a path, or a package name) to register its job
                           classes (see lib/registry.js); repeatable
  --redis-url URL          default redis://127.0.0.1:6379/0            (REDIS_URL)
  --namespace NS           default resque                              (JOBWIRE_NAMESPACE)
  --concurrency N          workers in this process, default 1          (JOBWIRE_CONCURRENCY)
  --heartbeat-ms N         default 5000                                (JOBWIRE_HEARTBEAT_MS)
  --lease-ms N             default 30000; must exceed 2 x heartbeat    (JOBWIRE_LEASE_MS)
  --block-timeout-ms N     default 5000                                (JOBWIRE_BLOCK_TIMEOUT_MS)
  --max-deaths N           default 3                                   (JOBWIRE_MAX_DEATHS)
  --job-timeout-ms N       default 0 (none)                            (JOBWIRE_JOB_TIMEOUT_MS)
  --max-payload-bytes N    default 16777216                            (JOBWIRE_MAX_PAYLOAD_BYTES)`;

export class ConfigError extends Error {}

/** Parses argv and env into Worker options; throws ConfigError on bad input. */
export function workerConfig(argv = process.argv.slice(2), env = process.env) {
  const flags = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
    import: { type: 'string', multiple: true },
  };
  for (const [flag] of OPTIONS) flags[flag] = { type: 'string' };
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError(err.message);
  }
  if (values.help) return { help: true };
  if (values.version) return { version: true };
  const config = { ...DEFAULTS, imports: values.import ?? [] };
  for (const [flag, envName, name, kind] of OPTIONS) {
    const raw = values[flag] ?? (env[envName] !== undefined && env[envName] !== '' ? env[envName] : undefined);
    if (raw === undefined) continue;
    if (kind === 'string') {
      config[name] = raw;
    } else {
      const n = Number(raw);
      const min = kind === 'int0' ? 0 : 1;
      if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < min) {
        throw new ConfigError(`--${flag} (${envName}) must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
      }
      config[name] = n;
    }
  }
  if (!config.queues) throw new ConfigError('--queues (or JOBWIRE_QUEUES) is required');
  if (!(config.leaseMs > 2 * config.heartbeatMs)) {
    throw new ConfigError(`--lease-ms (${config.leaseMs}) must exceed 2 x --heartbeat-ms (${config.heartbeatMs})`);
  }
  return config;
}
