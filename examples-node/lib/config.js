// Worker configuration of protocol.md 7.2: flag first, then environment variable (when set and
// not empty), then default. Flags, variables, defaults and bounds come from spec/options.json.
import { parseArgs } from 'node:util';
import { OPTIONS, DEFAULTS, usage } from './options.js';
import { parseDefaultPolicy } from './backoff.js';

// protocol.md 14.1's options of a worker that claims delayed / retries / schedules. They are not
// in spec/options.json (its table is protocol.md 7.2's); [flag, env, key, default, help].
export const OPTIONS_1_1 = Object.freeze([
  ['--default-retry', 'JOBWIRE_DEFAULT_RETRY', 'defaultRetry', 'false', 'retry policy (JSON) of jobs that carry none'],
  ['--scheduler', 'JOBWIRE_SCHEDULER', 'scheduler', 'all', 'all (promote, fire schedules), promote or off'],
]);
export const SCHEDULER_MODES = Object.freeze(['all', 'promote', 'off']);
export const DEFAULTS_1_1 = Object.freeze(Object.fromEntries(OPTIONS_1_1.map(([, , key, dflt]) => [key, dflt])));

// --no-fork is this worker's own flag (not a protocol option): jobs run in its process.
export const USAGE = [usage('node worker.js'),
  ...OPTIONS_1_1.map(([flag, env, , dflt, help]) => `  ${`${flag} VALUE`.padEnd(25)}${help}; default ${dflt} (${env})`),
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
  for (const [flag] of OPTIONS_1_1) flags[flag.slice(2)] = { type: 'string' };
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
  for (const [flag, envName, key, dflt] of OPTIONS_1_1) {
    const raw = values[flag.slice(2)] ?? (env[envName] !== undefined && env[envName] !== '' ? env[envName] : undefined);
    config[key] = raw ?? dflt;
  }
  try {
    parseDefaultPolicy(config.defaultRetry);
  } catch (err) {
    throw new ConfigError(err.message);
  }
  if (!SCHEDULER_MODES.includes(config.scheduler)) {
    throw new ConfigError(`--scheduler (JOBWIRE_SCHEDULER) is all, promote or off, not ${JSON.stringify(config.scheduler)}`);
  }
  if (!config.queues) throw new ConfigError('--queues (or JOBWIRE_QUEUES) is required');
  if (!(config.leaseMs > 2 * config.heartbeatMs)) {
    throw new ConfigError(`--lease-ms (${config.leaseMs}) must exceed 2 x --heartbeat-ms (${config.heartbeatMs})`);
  }
  return config;
}
