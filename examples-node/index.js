// jobwire for Node.js: the public API.
export { keys, buildKey, TEMPLATES, isValidQueueName, assertQueueName, DEFAULT_NAMESPACE } from './lib/keys.js';
export { Scripts, scripts, isNoScript } from './lib/scripts.js';
export { Client, buildPayload, newJobId, parseFailure, compareUtf8, MAX_BULK } from './lib/client.js';
export {
  Worker, WorkerProcess, DEFAULTS, describeError, failureRecord, parseQueues, stackFrames, stderrLogger,
} from './lib/worker.js';
export { conformanceHandlers, registerConformanceJobs, echo } from './lib/conformance.js';
export { jobPayloadError, InvalidPayloadError } from './lib/validate.js';
export { parseJson, stringifyJson, failedAt, runAt, startedAt, utcDay, backoffMs, connect } from './lib/util.js';
export { specVersion, specMajor, specDir, packageVersion } from './lib/spec.js';
export { Registry, defaultRegistry, job, importJobs } from './lib/registry.js';
