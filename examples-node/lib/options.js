// The worker options of protocol.md 7.2 and 14.1, read from spec/options.json, their one source:
// flag, environment variable, default, bounds. config.js parses argv and env with them; DEFAULTS
// feeds Worker and Client.
import { readSpecJson } from './spec.js';

const doc = readSpecJson('options.json');

/** snake_case (options.json) to camelCase (the Worker's option names): heartbeat_ms -> heartbeatMs. */
export function camel(name) {
  return name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

/** Every option of options.json with its camelCase key, in the order of the usage text. */
export const OPTIONS = Object.freeze(doc.options.map((o) => Object.freeze({ ...o, key: camel(o.name) })));

/** protocol.md 14.1: the options a worker claiming delayed/retries/schedules takes besides 7.2's. */
export const OPTIONS_1_1 = Object.freeze(doc.options_1_1.map((o) => Object.freeze({ ...o, key: camel(o.name) })));

/** Defaults by camelCase key (queues has none: it is required). */
export const DEFAULTS = Object.freeze(Object.fromEntries(
  OPTIONS.filter((o) => o.default !== null).map((o) => [o.key, o.default])));

/** The 1.1 options' defaults by camelCase key (defaultRetry is JSON text, "false"). */
export const DEFAULTS_1_1 = Object.freeze(Object.fromEntries(OPTIONS_1_1.map((o) => [o.key, o.default])));

/** The --scheduler modes (options.json "values"). */
export const SCHEDULER_MODES = Object.freeze([...OPTIONS_1_1.find((o) => o.name === 'scheduler').values]);

/** The usage text, generated from options.json so it never disagrees with it. */
export function usage(command) {
  const lines = [`usage: ${command} --queues a,b [options]`];
  for (const o of [...OPTIONS, ...OPTIONS_1_1]) {
    const arg = { integer: 'N', queues: 'a,b', json: 'POLICY', enum: 'MODE' }[o.type] ?? 'VALUE';
    const dflt = o.required ? 'required' : `default ${o.default}`;
    lines.push(`  ${`${o.flag} ${arg}`.padEnd(25)}${o.help}; ${dflt} (${o.env})`);
  }
  return lines.join('\n');
}
