// Worker configuration of protocol.md 7.2 and 14.1: flag first, then environment variable (when
// set and not empty), then default. Flags, variables, defaults and bounds come from
// spec/options.json (lib/options.js).
import { parseArgs } from 'node:util';
import { OPTIONS, OPTIONS_1_1, DEFAULTS, DEFAULTS_1_1, SCHEDULER_MODES, usage } from './options.js';
import { parseDefaultPolicy } from './backoff.js';
import { parseRedisUrl } from './redis-url.js';

export { OPTIONS_1_1, DEFAULTS_1_1, SCHEDULER_MODES }; // their home was this module; kept for importers

// --no-fork is this worker's own flag (not a protocol option): jobs run in its process.
export const USAGE = [usage('node worker.js'),
  "  --no-fork                run jobs in the worker's process (faster; a hung job cannot be killed)"].join('\n');

export class ConfigError extends Error {}

/** One integer option: ASCII digits only, at least its minimum. */
function integer(o, raw, source) {
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(n) || n < o.minimum) {
    throw new ConfigError(`${source} must be an integer >= ${o.minimum} of ASCII digits, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Parses argv and env into Worker options; throws ConfigError (exit status 2) on bad input. */
export function workerConfig(argv = process.argv.slice(2), env = process.env) {
  const flags = { help: { type: 'boolean', short: 'h' }, 'no-fork': { type: 'boolean' } };
  for (const o of OPTIONS) flags[o.flag.slice(2)] = { type: 'string' };
  for (const o of OPTIONS_1_1) flags[o.flag.slice(2)] = { type: 'string' };
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError(err.message);
  }
  if (values.help) return { help: true };
  const config = { ...DEFAULTS, fork: !values['no-fork'] }; // the CLI runs jobs in a child by default
  for (const o of OPTIONS) {
    let raw = values[o.flag.slice(2)];
    let source = o.flag;
    if (raw === undefined && env[o.env] !== undefined && env[o.env] !== '') [raw, source] = [env[o.env], `$${o.env}`];
    if (raw === undefined) continue;
    config[o.key] = o.type === 'integer' ? integer(o, raw, source) : raw;
  }
  for (const o of OPTIONS_1_1) {
    const raw = values[o.flag.slice(2)] ?? (env[o.env] !== undefined && env[o.env] !== '' ? env[o.env] : undefined);
    config[o.key] = raw ?? o.default;
  }
  try {
    parseDefaultPolicy(config.defaultRetry);
  } catch (err) {
    throw new ConfigError(err.message);
  }
  if (!SCHEDULER_MODES.includes(config.scheduler)) {
    throw new ConfigError(`--scheduler (JOBWIRE_SCHEDULER) is ${SCHEDULER_MODES.join(', ')}, not ${JSON.stringify(config.scheduler)}`);
  }
  if (!config.queues) throw new ConfigError('--queues (or JOBWIRE_QUEUES) is required');
  try {
    parseRedisUrl(config.redisUrl); // a bad URL is bad usage, found before anything connects
  } catch (err) {
    throw new ConfigError(err.message);
  }
  if (!(config.leaseMs > 2 * config.heartbeatMs)) {
    throw new ConfigError(`--lease-ms (${config.leaseMs}) must exceed 2 x --heartbeat-ms (${config.heartbeatMs})`);
  }
  return config;
}
