// Running a reserved job (protocol.md 7.4) and leaving its outcome in worker.pending for the
// next work.lua call: the payload checks, in-process ("inline") running, the fork mode's job
// child (lib/job-runner.js), and the retry-or-fail decision of protocol.md 14.4.
//
// A mixin of Worker (lib/worker.js copies these methods onto its prototype): they use the
// worker's options, handlers, runner, current, epoch, pending, stats, terminateLatch,
// pollControl() and setState().
import { jobPayloadError } from './validate.js';
import { describeError } from './errors.js';
import { failureRecord } from './failure-record.js';
import { policyFromMember, retryDelayMs, retries } from './backoff.js';
import { parseJson, needsLosslessParse } from './util.js';

const CONTROL_POLL_MS = 1000; // protocol.md 7.5: read the control list at least this often while a job runs

export const jobRunning = {
  /** Runs a reserved job and leaves its outcome in this.pending (protocol.md 7.4). */
  async runJob(token, queue, raw) {
    const epoch = this.epoch;
    const text = raw.toString('utf8');
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      // lua-cjson accepted what JSON.parse does not (e.g. hex numbers, NaN): keep the bytes as a string.
      this.fail(token, raw, queue, { exception: 'jobwire.InvalidJSON', error: `payload is not valid JSON: ${err.message}` }, false);
      return;
    }
    const invalid = jobPayloadError(doc);
    if (invalid) {
      this.fail(token, raw, queue, { exception: 'jobwire.InvalidPayload', error: `payload does not match job.schema.json: ${invalid}` });
      return;
    }
    if (this.runner) {
      await this.runInChild(token, queue, raw, text, doc, epoch);
      return;
    }
    const className = doc.class;
    const handler = this.handlers.get(className);
    if (!handler) {
      this.fail(token, raw, queue, { exception: 'jobwire.UnknownClass', error: `no handler registered for class ${JSON.stringify(className)}` });
      return;
    }
    const args = needsLosslessParse(text) ? parseJson(text).args ?? [] : doc.args ?? [];
    const startedMs = Date.now();
    this.current = { token, queue, className, startedMs };
    this.setState('Processing');
    const attempt = 1 + (Array.isArray(doc.attempts) ? doc.attempts.length : 0); // protocol.md 14.4
    const ctx = {
      id: typeof doc.id === 'string' ? doc.id : null,
      className, queue, token, args, payload: text, worker: this.id, pid: process.pid, attempt,
      redis: this.cmd, keys: this.k, log: this.log,
    };
    const controlTimer = setInterval(() => {
      this.pollControl().catch((err) => this.log.debug(`${this.id}: control poll: ${err.message}`));
    }, CONTROL_POLL_MS);
    let timeoutTimer;
    let job = (async () => {
      const result = await handler.apply(ctx, args);
      if (result instanceof Error) throw result;
      return { ok: true };
    })().catch((err) => ({ ok: false, err }));
    if (this.options.jobTimeoutMs > 0) {
      job = Promise.race([job, new Promise((resolve) => {
        timeoutTimer = setTimeout(() => resolve({ timeout: true }), this.options.jobTimeoutMs);
      })]);
    }
    let outcome;
    try {
      outcome = await this.terminateLatch.race(job, () => ({ abandoned: true }));
    } finally {
      clearInterval(controlTimer);
      clearTimeout(timeoutTimer);
      this.current = null;
    }
    if (outcome.abandoned) {
      this.log.warn(`${this.id}: leaving while ${className} (${token}) runs; it goes back to ${queue}`);
      return;
    }
    if (epoch !== this.epoch) {
      this.log.warn(`${this.id}: not settling ${className} (${token}): this worker was recovered as dead meanwhile`);
      return;
    }
    if (outcome.timeout) {
      this.retryOrFail(doc, token, raw, queue, {
        exception: 'jobwire.Timeout',
        error: `job ran longer than ${this.options.jobTimeoutMs} ms; an in-process job cannot be killed, its outcome is ignored`,
      });
      return;
    }
    if (outcome.ok) {
      this.pending = { op: 'ok', token, record: '' };
      this.stats.processed += 1;
      this.log.debug(`${this.id}: ${className} done in ${Date.now() - startedMs} ms`);
    } else {
      this.retryOrFail(doc, token, raw, queue, describeError(outcome.err));
    }
    if (!this.paused && !this.stopping) this.setState('Waiting');
  },

  /** Fork mode: runs the job in this worker's child (lib/job-runner.js), settles what it tells. */
  async runInChild(token, queue, raw, text, doc, epoch) {
    const className = doc.class;
    this.current = { token, queue, className, startedMs: Date.now() };
    this.setState('Processing');
    const controlTimer = setInterval(() => {
      this.pollControl().catch((err) => this.log.debug(`${this.id}: control poll: ${err.message}`));
    }, CONTROL_POLL_MS);
    let o;
    try {
      const attempt = 1 + (Array.isArray(doc.attempts) ? doc.attempts.length : 0); // protocol.md 14.4
      o = await this.runner.run({ token, queue, className, payload: text, jobId: typeof doc.id === 'string' ? doc.id : null, attempt },
        { timeoutMs: this.options.jobTimeoutMs });
    } catch (err) {
      if (this.stopping) return; // given back to its queue when the worker leaves
      throw err;
    } finally {
      clearInterval(controlTimer);
      this.current = null;
    }
    if (o.killedBy === 'term') {
      this.log.warn(`${this.id}: killed ${className} (${token}) to leave; it goes back to ${queue}`);
      return;
    }
    if (epoch !== this.epoch) {
      this.log.warn(`${this.id}: not settling ${className} (${token}): this worker was recovered as dead meanwhile`);
      return;
    }
    if (o.ok) {
      this.pending = { op: 'ok', token, record: '' };
      this.stats.processed += 1;
    } else if (o.killedBy === 'timeout') {
      this.retryOrFail(doc, token, raw, queue, { exception: 'jobwire.Timeout', error: `job ran longer than ${this.options.jobTimeoutMs} ms; child ${o.pid} was killed` });
    } else if (o.killedBy) {
      this.fail(token, raw, queue, { exception: 'jobwire.Killed', error: `${o.killedBy}; child ${o.pid} was killed` });
    } else if (o.crash) {
      this.log.warn(`${this.id}: ${o.crash} while running ${className}`);
      this.pending = { op: 'crash', token, record: o.crash, queue }; // a crash requeues to `queue`
      this.stats.processed += 1;
    } else if (o.notRetried) {
      this.fail(token, raw, queue, o.error);
    } else {
      this.retryOrFail(doc, token, raw, queue, o.error);
    }
    if (!this.paused && !this.stopping) this.setState('Waiting');
  },

  /** A job error or timeout: another attempt under the job's policy, else fail (protocol.md 14.4). */
  retryOrFail(doc, token, raw, queue, error) {
    const policy = policyFromMember(doc.retry) ?? this.defaultPolicy;
    const attempt = 1 + (Array.isArray(doc.attempts) ? doc.attempts.length : 0);
    if (!retries(policy, attempt)) {
      this.fail(token, raw, queue, error);
      return;
    }
    const jobId = typeof doc.id === 'string' ? doc.id : '';
    const delayMs = retryDelayMs(policy, jobId, attempt);
    const entry = JSON.stringify({
      attempt, failed_at_ms: Date.now(), exception: String(error.exception), error: String(error.error),
      worker: this.id, queue, delay_ms: delayMs,
    });
    const record = failureRecord(raw, error, this.id, queue); // used if Redis refuses the retry
    this.pending = { op: 'retry', token, record, delayMs, entry, queue };
    this.stats.processed += 1;
    this.stats.failed += 1;
    this.log.info(`${this.id}: job ${jobId || doc.class} attempt ${attempt} failed (${error.exception}); retrying in ${delayMs} ms`);
  },

  fail(token, raw, queue, error, payloadIsObject = true) {
    this.pending = { op: 'fail', token, record: failureRecord(raw, error, this.id, queue, { payloadIsObject }) };
    this.stats.processed += 1;
    this.stats.failed += 1;
    this.log.debug(`${this.id}: job ${token} failed: ${error.exception}: ${error.error}`);
  },
};
