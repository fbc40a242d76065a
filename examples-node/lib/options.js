// The worker options of protocol.md 7.2, read from spec/options.json, their one source: flag,
// environment variable, default, bounds. config.js parses argv and env with them; DEFAULTS
// feeds Worker and Client.
import { readSpecJson } from './spec.js';

const doc = readSpecJson('options.json');

/** snake_case (options.json) to camelCase (the Worker's option names): heartbeat_ms -> heartbeatMs. */
export function camel(name) {
  return name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

/** Every option of options.json with its camelCase key, in the order of the usage text. */
export const OPTIONS = Object.freeze(doc.options.map((o) => Object.freeze({ ...o, key: camel(o.name) })));

/** Defaults by camelCase key (queues has none: it is required). */
export const DEFAULTS = Object.freeze(Object.fromEntries(
  OPTIONS.filter((o) => o.default !== null).map((o) => [o.key, o.default])));

/** The usage text, generated from options.json so it never disagrees with it. */
export function usage(command) {
  const lines = [`usage: ${command} --queues a,b [options]`];
  for (const o of OPTIONS) {
    const arg = o.type === 'integer' ? 'N' : o.name === 'queues' ? 'a,b' : 'VALUE';
    const dflt = o.required ? 'required' : `default ${o.default}`;
    lines.push(`  ${`${o.flag} ${arg}`.padEnd(25)}${o.help}; ${dflt} (${o.env})`);
  }
  return lines.join('\n');
}
