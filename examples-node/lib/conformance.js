// The conformance job classes of protocol.md section 10. Handlers run with `this` = the job
// context (id, queue, worker, args, redis, keys, ...).
import { isLosslessNumber } from 'lossless-json';
import { stringifyJson, sleep, REPLY_LOST } from './util.js';

const ECHO_TRIES = 3; // as redis-py (Python) and the C echo: a reply cut on its way back is retried

/** RPUSH the echo record; a lost reply is retried (up to ECHO_TRIES), an error reply is not, so a
 * cut on the job's own connection fails the job in no language. A retry whose first try had run
 * leaves the record twice, as redis-py's retry does. */
async function rpushEcho(ctx, record) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await ctx.redis.rpush(ctx.keys.conformanceEcho(), record);
    } catch (err) {
      if (err.code !== REPLY_LOST || attempt >= ECHO_TRIES) throw err;
    }
  }
}

/** RPUSH <ns>:jobwire:conformance:echo {"id","args","worker","queue","pid","impl"}. */
export async function echo(ctx, impl = 'node') {
  const record = stringifyJson({
    id: ctx.id ?? null, args: ctx.args ?? [], worker: ctx.worker, queue: ctx.queue, pid: process.pid, impl,
  });
  await rpushEcho(ctx, record);
}

export const conformanceHandlers = Object.freeze({
  'jobwire.Echo': async function jobwireEcho() {
    await echo(this);
  },
  // protocol.md 10: the message itself, a non-string as its compact JSON, none as "jobwire.Fail".
  'jobwire.Fail': async function jobwireFail(...args) {
    if (args.length === 0) throw new Error('jobwire.Fail');
    throw new Error(typeof args[0] === 'string' ? args[0] : stringifyJson(args[0]));
  },
  // protocol.md 10: a float is allowed, a negative or missing value sleeps 0, a non-number fails.
  'jobwire.Sleep': async function jobwireSleep(ms = 0) {
    const n = typeof ms === 'number' ? ms : isLosslessNumber(ms) ? Number(ms.value) : NaN;
    if (Number.isNaN(n)) throw new TypeError(`jobwire.Sleep expects [milliseconds], got ${stringifyJson(ms)}`);
    await sleep(Math.max(0, n));
    await echo(this);
  },
  'jobwire.Crash': function jobwireCrash() {
    process.kill(process.pid, 'SIGKILL');
  },
  'jobwire.Noop': function jobwireNoop() {},
  // protocol.md 14.7: echo with the attempt number, then fail while attempt <= fail_times.
  'jobwire.Flaky': async function jobwireFlaky(failTimes = 0) {
    const record = stringifyJson({
      id: this.id ?? null, args: this.args ?? [], worker: this.worker, queue: this.queue, pid: process.pid, impl: 'node',
      attempt: this.attempt,
    });
    await rpushEcho(this, record);
    if (this.attempt <= Number(failTimes)) throw new Error(`flaky attempt ${this.attempt}`);
  },
});

/** Registers the conformance handlers on a Worker or WorkerProcess. */
export function registerConformanceJobs(target) {
  for (const [name, fn] of Object.entries(conformanceHandlers)) target.register(name, fn);
  return target;
}

// As a job module (Worker option jobModules, loaded by a fork-mode job child): this file's URL,
// and the register(target) such a module exports.
export const CONFORMANCE_MODULE = import.meta.url;
export const register = registerConformanceJobs;
