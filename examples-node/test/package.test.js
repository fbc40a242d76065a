// The npm package as a user gets it: `npm pack`, then `npm install <tarball>` into an empty
// project outside the checkout (no devDependencies such as node-resque, no JOBWIRE_SPEC_DIR),
// then import it, and run its worker binary with a handler module of the project's own.
// `npm pack` runs in a copy of the checkout (examples-node without node_modules, spec/,
// LICENSE, VERSION), so its prepack copy of spec/ never appears under the tests running
// meanwhile from this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startRedis, waitFor, echoes, failures, ROOT } from './helpers.js';
import { packagedSpecFiles } from '../scripts/pack-spec.js';

const run = promisify(execFile);
const REPO = path.resolve(ROOT, '..');
const VERSION = readFileSync(path.join(REPO, 'VERSION'), 'utf8').trim();
let tmp;
let packDir;
let tarball;
let project;
let server;

/** The environment of a user outside the checkout. */
function userEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('JOBWIRE_') || k === 'REDIS_URL' || k === 'NODE_PATH') delete env[k];
  return env;
}

/** Runs a command in the project; resolves with its stdout. */
async function inProject(cmd, args) {
  const { stdout } = await run(cmd, args, { cwd: project, env: userEnv() });
  return stdout;
}

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'jobwire-npm-'));
  packDir = path.join(tmp, 'checkout', 'examples-node');
  cpSync(ROOT, packDir, { recursive: true, filter: (src) => !src.startsWith(path.join(ROOT, 'node_modules')) });
  for (const f of ['spec', 'LICENSE', 'VERSION']) cpSync(path.join(REPO, f), path.join(tmp, 'checkout', f), { recursive: true });
  await run('npm', ['pack', '--pack-destination', tmp], { cwd: packDir });
  tarball = path.join(tmp, `jobwire-${VERSION}.tgz`);
  project = path.join(tmp, 'project');
  await run('mkdir', ['-p', path.join(project, 'jobs')]);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await inProject('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball]);
  server = await startRedis();
}, { timeout: 180000 });
after(async () => {
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, { timeout: 30000 });

test('the package version is the root VERSION', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.version, VERSION);
  assert.equal(pkg.name, 'jobwire');
  assert.equal(pkg.license, 'MIT');
  assert.equal(pkg.private, undefined);
});

test('the tarball carries the spec files byte for byte, LICENSE and README, and nothing of the checkout', async () => {
  const listing = (await run('tar', ['tzf', tarball])).stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  for (const f of ['package.json', 'README.md', 'LICENSE', 'index.js', 'worker.js', 'enqueue.js', 'gateway-worker.js', 'lib/registry.js']) {
    assert.ok(listing.includes(f), `${f} is packed`);
  }
  for (const f of listing) assert.doesNotMatch(f, /^(test|interop|scripts|node_modules)\/|^bench\.js$/, `${f} is not packed`);
  const unpacked = path.join(tmp, 'unpacked');
  await run('mkdir', ['-p', unpacked]);
  await run('tar', ['xzf', tarball, '-C', unpacked]);
  const specFiles = packagedSpecFiles(path.join(REPO, 'spec'));
  assert.ok(specFiles.includes('lua/work.lua') && specFiles.includes('schemas/job.schema.json'));
  assert.deepEqual(listing.filter((f) => f.startsWith('spec/')).sort(), specFiles.map((f) => `spec/${f}`),
    "the tarball's spec/ holds exactly the spec's files but its Markdown prose");
  for (const rel of specFiles) {
    assert.ok(readFileSync(path.join(unpacked, 'package', 'spec', rel)).equals(readFileSync(path.join(REPO, 'spec', rel))),
      `spec/${rel} is byte-identical`);
  }
  assert.ok(readFileSync(path.join(unpacked, 'package', 'LICENSE')).equals(readFileSync(path.join(REPO, 'LICENSE'))));
  assert.ok(!existsSync(path.join(packDir, 'spec')) && !existsSync(path.join(packDir, 'LICENSE')),
    'postpack removed the copies from the package folder');
  assert.ok(existsSync(path.join(packDir, 'package.json')), 'the package folder itself stays');
});

test('installed into an empty project it imports, without dev dependencies, from its own spec copy', async () => {
  const modules = readdirSync(path.join(project, 'node_modules'));
  assert.ok(modules.includes('jobwire'));
  assert.ok(!modules.includes('node-resque'), 'no devDependency installed');
  writeFileSync(path.join(project, 'check.js'), `import { Client, Worker, job, specDir, specVersion, packageVersion } from 'jobwire';
console.log(JSON.stringify({ client: typeof Client, worker: typeof Worker, job: typeof job, spec: specDir(), protocol: specVersion(), version: packageVersion() }));\n`);
  const out = JSON.parse(await inProject(process.execPath, ['check.js']));
  assert.deepEqual(out, {
    client: 'function', worker: 'function', job: 'function',
    spec: path.join(project, 'node_modules', 'jobwire', 'spec'),
    protocol: readFileSync(path.join(REPO, 'spec', 'VERSION'), 'utf8').trim(),
    version: VERSION,
  });
});

test("the installed worker binary runs the project's own handlers (--import) and the conformance classes", { timeout: 60000 }, async () => {
  // Two styles of registration: job() on the default registry, and an exported register().
  writeFileSync(path.join(project, 'jobs', 'thumbs.js'), `import { job } from 'jobwire';
job('Thumb', async function thumb(image, size) {
  await this.redis.rpush('app:thumbs', \`\${image}@\${size}\`);
});\n`);
  writeFileSync(path.join(project, 'jobs', 'broken.js'), `class ThumbError extends Error { name = 'ThumbError'; }
export function register(registry) {
  registry.register('Broken', (image) => { throw new ThumbError(\`no image \${image}\`); });
}\n`);
  const bin = (name) => path.join(project, 'node_modules', '.bin', name);
  assert.equal(await inProject(bin('jobwire-node-enqueue'), ['--version']), `jobwire-node-enqueue ${VERSION}\n`);
  assert.match(await inProject(bin('jobwire-node-worker'), ['--version']), new RegExp(`^jobwire-node-worker ${VERSION} \\(protocol `));
  for (const [klass, ...args] of [['Thumb', '"cat.png"', '64'], ['Broken', '"dog.png"'], ['jobwire.Echo', '1']]) {
    const id = await inProject(bin('jobwire-node-enqueue'), ['--redis-url', server.url, '--', 'imgs', klass, ...args]);
    assert.match(id.trim(), /^[0-9a-f]{32}$/);
  }
  const worker = spawn(bin('jobwire-node-worker'), ['--queues', 'imgs', '--redis-url', server.url, '--block-timeout-ms', '200',
    '--import', './jobs/thumbs.js', '--import', './jobs/broken.js'], { cwd: project, env: userEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  worker.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => worker.once('exit', (code) => resolve(code)));
  try {
    await waitFor(async () => (await server.redis.get('resque:stat:processed')) === '3', { timeout: 20000, what: `3 jobs (log: ${log})` });
    assert.deepEqual(await server.redis.lrange('app:thumbs', 0, -1), ['cat.png@64']);
    const [f] = await failures(server.redis);
    assert.equal(f.exception, 'ThumbError');
    assert.equal(f.error, 'no image dog.png');
    const [echo] = await echoes(server.redis);
    assert.deepEqual([echo.impl, echo.args], ['node', [1]]);
    const [id] = await server.redis.smembers('resque:workers');
    assert.equal(await server.redis.hget(`resque:jobwire:worker:${id}`, 'impl_version'), VERSION);
  } finally {
    worker.kill('SIGQUIT');
  }
  assert.equal(await exited, 0, log);
});

test("the installed gateway worker loads its gRPC dependencies and the packaged spec/proto", { timeout: 30000 }, async () => {
  // No gateway listens on this socket: the worker must get as far as dialling it and retrying.
  const bin = path.join(project, 'node_modules', '.bin', 'jobwire-node-gateway-worker');
  const worker = spawn(bin, ['--queues', 'a', '--gateway', `unix:${path.join(tmp, 'no-gateway.sock')}`,
    '--heartbeat-ms', '100', '--lease-ms', '1000'], { cwd: project, env: userEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  worker.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => worker.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    await waitFor(() => /reconnecting in \d+ ms/.test(log), { timeout: 20000, what: `a reconnect attempt (log: ${log})` });
  } finally {
    worker.kill('SIGKILL');
  }
  assert.deepEqual(await exited, { code: null, signal: 'SIGKILL' }, log);
});
