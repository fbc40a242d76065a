// The registration API (lib/registry.js) and `worker.js --import`, from the checkout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startRedis, waitFor, spawnWorker, killProc, failures, ROOT } from './helpers.js';
import { Registry, defaultRegistry, job, importJobs } from '../lib/registry.js';

let server;
let tmp;

before(async () => {
  server = await startRedis();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'jobwire-registry-'));
}, { timeout: 30000 });
after(async () => {
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
}, { timeout: 30000 });

/** Writes a module into the temp folder; returns its path. */
function writeModule(name, source) {
  const file = path.join(tmp, name);
  writeFileSync(file, source);
  return file;
}

test('register: functions and objects with perform; again replaces; bad input throws', () => {
  const r = new Registry();
  const f = function mail() { return this.id; };
  assert.equal(r.register('Mail', f), f);
  assert.equal(r.get('Mail'), f);
  class Archive { static perform(p) { return `${this.id}:${p}`; } }
  r.register('Archive', Archive);
  assert.equal(r.get('Archive').call({ id: 'j1' }, 'x'), 'j1:x', 'perform runs with the job context as this');
  r.register('Mail', Archive);
  assert.equal(r.get('Mail').call({ id: 'j2' }, 'y'), 'j2:y');
  assert.deepEqual(r.names(), ['Archive', 'Mail']);
  assert.throws(() => r.register('', f), TypeError);
  assert.throws(() => r.register(42, f), TypeError);
  assert.throws(() => r.register('X', {}), /perform/);
  assert.throws(() => r.register('X', 'not a function'), TypeError);
  const seen = new Map();
  r.applyTo({ register: (name, fn) => seen.set(name, fn) });
  assert.deepEqual([...seen.keys()].sort(), ['Archive', 'Mail']);
});

test('the default registry is one per process, even across two copies of the module', async () => {
  const copy = await import(`${pathToFileURL(path.join(ROOT, 'lib', 'registry.js')).href}?copy=2`);
  assert.notEqual(copy.Registry, Registry, 'a second module instance');
  assert.equal(copy.defaultRegistry, defaultRegistry);
  copy.job('Test.SharedCopy', () => {});
  assert.ok(defaultRegistry.get('Test.SharedCopy'));
  job('Test.Shared', () => {});
  assert.ok(copy.defaultRegistry.get('Test.Shared'));
});

test('importJobs: relative paths from cwd, register(registry) exports, clear errors', async () => {
  writeModule('exported.mjs', `export function register(registry) {
    registry.register('Test.Exported', function exported() {});
  }\n`);
  const r = new Registry();
  assert.deepEqual(await importJobs('./exported.mjs', { registry: r, cwd: tmp }), ['Test.Exported']);
  writeModule('throws.mjs', 'throw new Error("boom at import");\n');
  await assert.rejects(importJobs('./throws.mjs', { registry: r, cwd: tmp }), /cannot import \.\/throws\.mjs: boom at import/);
  await assert.rejects(importJobs('./missing.mjs', { registry: r, cwd: tmp }), /cannot import \.\/missing\.mjs/);
  await assert.rejects(importJobs('no-such-package-jobwire', { registry: r, cwd: tmp }), /cannot import no-such-package-jobwire/);
});

test('worker.js --import runs a handler defined outside the package', { timeout: 60000 }, async () => {
  // No import of 'jobwire' here: the module lives where the package cannot be resolved.
  const file = writeModule('my-jobs.mjs', `class ResizeError extends Error { name = 'ResizeError'; }
export function register(registry) {
  registry.register('Resize', async function resize(image, width) {
    await this.redis.rpush('test:resized', \`\${image}@\${width} by \${this.worker}\`);
  });
  registry.register('BadResize', { perform(image) { throw new ResizeError(\`cannot resize \${image}\`); } });
}\n`);
  const w = spawnWorker(server.url, 'img', ['--import', file]);
  try {
    await server.redis.rpush('resque:queue:img', JSON.stringify({ class: 'Resize', args: ['cat.png', 64] }),
      JSON.stringify({ class: 'BadResize', args: ['dog.png'] }));
    await server.redis.sadd('resque:queues', 'img');
    await waitFor(async () => (await server.redis.get('resque:stat:processed')) === '2', { timeout: 20000, what: '2 jobs' });
    const [done] = await server.redis.lrange('test:resized', 0, -1);
    assert.match(done, /^cat\.png@64 by .+:\d+:img$/);
    const [f] = await failures(server.redis);
    assert.equal(f.exception, 'ResizeError');
    assert.equal(f.error, 'cannot resize dog.png');
    assert.match(w.output(), /imported .*my-jobs\.mjs: BadResize, Resize/);
  } finally {
    await killProc(w, 'SIGQUIT');
  }
});

test('worker.js --import of a module that cannot load exits 2 and says why', { timeout: 30000 }, async () => {
  const w = spawnWorker(server.url, 'img', ['--import', './no-such-file.js']);
  const { code } = await w.exited;
  assert.equal(code, 2);
  assert.match(w.output(), /cannot import \.\/no-such-file\.js/);
});

test('worker.js --version names the root VERSION and the protocol version', { timeout: 30000 }, async () => {
  const w = spawnWorker(server.url, 'img', ['--version']);
  const { code } = await w.exited;
  const version = readFileSync(path.join(ROOT, '..', 'VERSION'), 'utf8').trim();
  const protocol = readFileSync(path.join(ROOT, '..', 'spec', 'VERSION'), 'utf8').trim();
  assert.equal(code, 0);
  assert.equal(w.output(), `jobwire-node-worker ${version} (protocol ${protocol})\n`);
});
