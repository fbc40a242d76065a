#!/usr/bin/env node
// jobwire worker: node examples-node/worker.js --queues a,b [options]  (see --help)
import { workerConfig, USAGE, ConfigError } from './lib/config.js';
import { WorkerProcess, stderrLogger } from './lib/worker.js';
import { registerConformanceJobs, CONFORMANCE_MODULE } from './lib/conformance.js';

let config;
try {
  config = workerConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`jobwire-node: ${err.message}\n${USAGE}\n`);
  process.exit(2);
}
if (config.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const log = stderrLogger();
let proc;
try {
  proc = new WorkerProcess({ ...config, logger: log, jobModules: [CONFORMANCE_MODULE] }); // fork mode: the child's handlers
} catch (err) {
  process.stderr.write(`jobwire-node: ${err.message}\n${USAGE}\n`);
  process.exit(2);
}
registerConformanceJobs(proc);
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
