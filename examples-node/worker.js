#!/usr/bin/env node
// jobwire worker: node examples-node/worker.js --queues a,b [--import ./my-jobs.js] [options]
// (installed as jobwire-node-worker; see --help). Runs the conformance job classes plus every
// class the --import modules register (lib/registry.js); a module's class wins over a
// conformance class of the same name.
import { workerConfig, USAGE as OPTIONS_USAGE, ConfigError } from './lib/config.js';
import { WorkerProcess, stderrLogger } from './lib/worker.js';
import { registerConformanceJobs, CONFORMANCE_MODULE } from './lib/conformance.js';
import { defaultRegistry, importJobs, resolveSpecifier } from './lib/registry.js';
import { packageVersion, specVersion } from './lib/spec.js';

const USAGE = `${OPTIONS_USAGE}
  ${'--import MODULE'.padEnd(25)}import MODULE (a path, or a package name) to register its job classes (lib/registry.js); repeatable
  ${'--version'.padEnd(25)}print the package and protocol versions`;

/** Bad usage (protocol.md 7.2): one line on stderr, exit status 2 (the usage text is --help's). */
function configError(message) {
  process.stderr.write(`jobwire-node: ${message} (see --help)\n`);
  process.exit(2);
}

/** Splits this program's own flags (--import, --version) off argv; the rest are protocol.md
 * 7.2's, parsed by lib/config.js (as gateway-worker.js does with its own). */
function parseArgv(argv) {
  const own = { imports: [], version: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    if (flag === '--version' && inline === undefined) own.version = true;
    else if (flag === '--import') {
      const value = inline ?? argv[++i];
      if (value === undefined || value === '') throw new ConfigError('--import needs a module');
      own.imports.push(value);
    } else rest.push(argv[i]);
  }
  return { own, config: own.version ? {} : workerConfig(rest) };
}

let own;
let config;
try {
  ({ own, config } = parseArgv(process.argv.slice(2)));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  configError(err.message);
}
if (config.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (own.version) {
  process.stdout.write(`jobwire-node-worker ${packageVersion()} (protocol ${specVersion()})\n`);
  process.exit(0);
}

const log = stderrLogger();
let proc;
try {
  proc = new WorkerProcess({ ...config, logger: log, jobModules: [CONFORMANCE_MODULE, ...own.imports.map((s) => resolveSpecifier(s, process.cwd()))] });
  // fork mode: the job child imports the same modules and runs their handlers
} catch (err) {
  configError(err.message);
}
registerConformanceJobs(proc);
for (const specifier of own.imports) {
  try {
    const added = await importJobs(specifier);
    log.info(`imported ${specifier}: ${added.length ? added.join(', ') : 'no new job classes'}`);
  } catch (err) {
    process.stderr.write(`jobwire-node: ${err.message}\n`);
    process.exit(2);
  }
}
defaultRegistry.applyTo(proc);
proc.installSignals();

process.on('unhandledRejection', (err) => log.error(`unhandled rejection: ${err?.stack ?? err}`));
process.on('uncaughtException', (err) => log.error(`uncaught exception (worker keeps going): ${err?.stack ?? err}`));

try {
  await proc.run();
  log.info('all workers left; exiting');
  process.exit(0);
} catch (err) {
  log.error(`fatal: ${err.message}`);
  process.exit(1);
}
