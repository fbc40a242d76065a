// The conformance job classes of protocol.md section 10. Handlers run with `this` = the job
// context (id, queue, worker, args, redis, keys, ...).
import { stringifyJson, sleep } from './util.js';

/** RPUSH <ns>:jobwire:conformance:echo {"id","args","worker","queue","pid","impl"}. */
export async function echo(ctx, impl = 'node') {
  const record = stringifyJson({
    id: ctx.id ?? null, args: ctx.args ?? [], worker: ctx.worker, queue: ctx.queue, pid: process.pid, impl,
  });
  await ctx.redis.rpush(ctx.keys.conformanceEcho(), record);
}

export const conformanceHandlers = Object.freeze({
  'jobwire.Echo': async function jobwireEcho() {
    await echo(this);
  },
  'jobwire.Fail': async function jobwireFail(message) {
    throw new Error(message === undefined ? '' : String(message));
  },
  'jobwire.Sleep': async function jobwireSleep(ms) {
    await sleep(Math.max(0, Number(ms) || 0));
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
    await this.redis.rpush(this.keys.conformanceEcho(), record);
    if (this.attempt <= Number(failTimes)) throw new Error(`flaky attempt ${this.attempt}`);
  },
});

/** Registers the conformance handlers on a Worker or WorkerProcess. */
export function registerConformanceJobs(target) {
  for (const [name, fn] of Object.entries(conformanceHandlers)) target.register(name, fn);
  return target;
}
