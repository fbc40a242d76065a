// Which code runs for which job class: the Node counterpart of Python's jobwire.registry.
//
// A class name read from Redis maps only to a handler registered here, never to an import
// (protocol.md 7.4). A module given to `jobwire-node-worker --import ./my-jobs.js` registers
// its classes in either of two ways:
//
//   import { job } from 'jobwire';                 // on the default registry, like Python's
//   job('Mail', async function (to, subject) {     // @jobwire.job("Mail")
//     // `this` is the job context: id, queue, worker, token, args, payload, redis, keys, log
//   });
//
//   export function register(registry) {           // needs no import of 'jobwire', so the module
//     registry.register('Mail', sendMail);          // also works from a checkout or another copy
//   }
//
// A handler is a function (called as fn.apply(context, args)) or an object or class with a
// `perform` method (called the same way), as Python accepts a class with a static perform.
// Python's job hooks (before_perform, ...) have no Node counterpart.
import path from 'node:path';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** Handlers by class name. */
export class Registry {
  #handlers = new Map();

  /**
   * Registers `target` for job class `name`; registering a name again replaces its handler.
   * Returns `target`, so `export const mail = job('Mail', async function ...)` reads well.
   */
  register(name, target) {
    if (typeof name !== 'string' || name === '') throw new TypeError('a job class name is a non-empty string');
    this.#handlers.set(name, toHandler(name, target));
    return target;
  }

  /** The callable registered for `name`, or undefined. */
  get(name) {
    return this.#handlers.get(name);
  }

  /** Registered class names, sorted. */
  names() {
    return [...this.#handlers.keys()].sort();
  }

  /** Copies every registration onto a Worker or WorkerProcess (anything with register(name, fn)). */
  applyTo(target) {
    for (const [name, fn] of this.#handlers) target.register(name, fn);
    return target;
  }
}

/** The function the worker calls for `target`: itself, or a wrapper calling target.perform. */
function toHandler(name, target) {
  if (typeof target?.perform === 'function') {
    const handler = function perform(...args) { return target.perform.apply(this, args); };
    Object.defineProperty(handler, 'name', { value: target.name || name });
    return handler;
  }
  if (typeof target === 'function') return target;
  throw new TypeError(`job class ${name}: a handler is a function or has a perform() method`);
}

// One default registry per process, even when two copies of this package are loaded (say the
// worker from a checkout and the user's module from its own node_modules): a module's job()
// calls must land where the worker looks.
const KEY = Symbol.for('jobwire.defaultRegistry');
globalThis[KEY] ??= new Registry();

/** The registry job() writes to and `jobwire-node-worker` runs from. */
export const defaultRegistry = globalThis[KEY];

/** Registers `target` for class `name` on the default registry (Python: @jobwire.job(name)). */
export function job(name, target) {
  return defaultRegistry.register(name, target);
}

/**
 * Imports a user's module for its registrations (`--import`), resolved as Python resolves
 * `--import mod` from the current directory: a path (./jobs.js, /srv/jobs.mjs, file: URL) is
 * taken relative to `cwd`, a bare name (my-app/jobs) is looked up in cwd's node_modules first.
 * If the module exports `register(registry)`, it is called (and awaited) with `registry`.
 * Returns the class names the module added. Throws an Error naming the module on failure.
 */
export async function importJobs(specifier, { registry = defaultRegistry, cwd = process.cwd() } = {}) {
  const before = new Set(registry.names());
  let mod;
  try {
    mod = await import(resolveSpecifier(specifier, cwd));
  } catch (err) {
    throw new Error(`cannot import ${specifier}: ${err.message}`, { cause: err });
  }
  if (typeof mod.register === 'function') await mod.register(registry);
  return registry.names().filter((n) => !before.has(n));
}

/** The URL or name to import() for an --import argument (also what the fork runner's child imports). */
export function resolveSpecifier(specifier, cwd) {
  if (specifier.startsWith('file:')) return specifier;
  const asPath = path.resolve(cwd, specifier);
  if (/^\.{1,2}(\/|$)/.test(specifier) || path.isAbsolute(specifier) || existsSync(asPath)) {
    return pathToFileURL(asPath).href;
  }
  try {
    return pathToFileURL(createRequire(path.join(cwd, 'noop.js')).resolve(specifier)).href;
  } catch {
    return specifier; // let import() resolve it (from this package) and report the error
  }
}
