// Worker configuration of protocol.md 7.2: flag first, then environment variable, then default.
import { parseArgs } from 'node:util';
import { DEFAULTS, SCHEDULER_MODES } from './worker.js';
import { parseDefaultPolicy } from './backoff.js';

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
  ['default-retry', 'JOBWIRE_DEFAULT_RETRY', 'defaultRetry', 'string'],
  ['scheduler', 'JOBWIRE_SCHEDULER', 'scheduler', 'string'],
];

export const USAGE = `usage: node worker.js --queues a,b [options]
  --queues a,b             queues in priority order; * = every queue   (JOBWIRE_QUEUES)
  --redis-url URL          default redis://127.0.0.1:6379/0            (REDIS_URL)
  --namespace NS           default resque                              (JOBWIRE_NAMESPACE)
  --concurrency N          workers in this process, default 1          (JOBWIRE_CONCURRENCY)
  --heartbeat-ms N         default 5000                                (JOBWIRE_HEARTBEAT_MS)
  --lease-ms N             default 30000; must exceed 2 x heartbeat    (JOBWIRE_LEASE_MS)
  --block-timeout-ms N     default 5000                                (JOBWIRE_BLOCK_TIMEOUT_MS)
  --max-deaths N           default 3                                   (JOBWIRE_MAX_DEATHS)
  --job-timeout-ms N       default 0 (none)                            (JOBWIRE_JOB_TIMEOUT_MS)
  --max-payload-bytes N    default 16777216                            (JOBWIRE_MAX_PAYLOAD_BYTES)
  --default-retry POLICY   retry policy (JSON) of jobs without one; default false (JOBWIRE_DEFAULT_RETRY)
  --scheduler MODE         all (promote, fire schedules), promote, off; default all (JOBWIRE_SCHEDULER)`;

export class ConfigError extends Error {}

/** Parses argv and env into Worker options; throws ConfigError on bad input. */
export function workerConfig(argv = process.argv.slice(2), env = process.env) {
  const flags = { help: { type: 'boolean', short: 'h' } };
  for (const [flag] of OPTIONS) flags[flag] = { type: 'string' };
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError(err.message);
  }
  if (values.help) return { help: true };
  const config = { ...DEFAULTS };
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
  try {
    parseDefaultPolicy(config.defaultRetry);
  } catch (err) {
    throw new ConfigError(err.message);
  }
  if (!SCHEDULER_MODES.includes(config.scheduler)) {
    throw new ConfigError(`--scheduler (JOBWIRE_SCHEDULER) is all, promote or off, not ${JSON.stringify(config.scheduler)}`);
  }
  if (!(config.leaseMs > 2 * config.heartbeatMs)) {
    throw new ConfigError(`--lease-ms (${config.leaseMs}) must exceed 2 x --heartbeat-ms (${config.heartbeatMs})`);
  }
  return config;
}
