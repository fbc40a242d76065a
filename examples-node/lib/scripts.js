// The protocol's atomic operations: spec/lua/*.lua, loaded byte for byte as listed in
// spec/lua/manifest.json, called with EVALSHA; on NOSCRIPT (e.g. a restarted Redis) the file is
// sent with SCRIPT LOAD and the call retried once.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { specPath, readSpecJson } from './spec.js';

export class Scripts {
  constructor() {
    const manifest = readSpecJson('lua', 'manifest.json');
    this.manifest = manifest;
    this.scripts = new Map();
    for (const [name, entry] of Object.entries(manifest.scripts)) {
      const source = readFileSync(specPath('lua', entry.file)); // a Buffer: exact bytes
      const sha = createHash('sha1').update(source).digest('hex');
      this.scripts.set(name, { name, file: entry.file, source, sha });
    }
  }

  get(name) {
    const s = this.scripts.get(name);
    if (!s) throw new Error(`no script ${JSON.stringify(name)} in spec/lua/manifest.json`);
    return s;
  }

  sha(name) {
    return this.get(name).sha;
  }

  /** SCRIPT LOAD every script (optional: EVALSHA loads lazily on NOSCRIPT anyway). */
  async loadAll(redis) {
    for (const s of this.scripts.values()) await redis.script('LOAD', s.source);
  }

  /**
   * Runs script `name` with `keys` and `args` on an ioredis connection. With `buffers` the
   * reply's bulk strings come back as Buffers (exact bytes), else as UTF-8 strings.
   */
  async call(redis, name, keys, args, { buffers = false } = {}) {
    const s = this.get(name);
    const evalsha = buffers ? redis.evalshaBuffer : redis.evalsha;
    try {
      return await evalsha.call(redis, s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      // On a cluster SCRIPT LOAD would go to any node; EVAL runs (and caches) the script on the
      // node that owns the keys' slot.
      if (redis.isCluster) {
        const evalsrc = buffers ? redis.evalBuffer : redis.eval;
        return await evalsrc.call(redis, s.source, keys.length, ...keys, ...args);
      }
      const loaded = await redis.script('LOAD', s.source);
      if (loaded !== s.sha) throw new Error(`SCRIPT LOAD of ${s.file} returned ${loaded}, expected ${s.sha}`);
      return await evalsha.call(redis, s.sha, keys.length, ...keys, ...args);
    }
  }
}

export function isNoScript(err) {
  return typeof err?.message === 'string' && err.message.startsWith('NOSCRIPT');
}

let shared;
/** One Scripts instance per process (the files are read once). */
export function scripts() {
  if (!shared) shared = new Scripts();
  return shared;
}
