// Durable enqueue (protocol.md 15.4): the enqueue script, then WAIT, on one connection. WAIT
// counts the replicas that have every write of *this connection*, so both go in one pipeline:
// ioredis sends a pipeline on one connection, and a Cluster sends it to the master of its keys'
// slot (WAIT has no key and follows the script's).
import { isNoScript } from './scripts.js';

export const DEFAULT_WAIT_TIMEOUT_MS = 1000;

/** spec/errors.json jobwire.NotReplicated: on the master, not acknowledged by enough replicas. */
export class NotReplicatedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'jobwire.NotReplicated';
  }
}

/** EVALSHA (EVAL when the node lacks the script) + WAIT; returns the script's reply. */
export async function durableCall(redis, script, keys, args, replicas, timeoutMs) {
  let [[err, reply], [waitErr, acked]] = await send(redis, 'evalsha', script.sha, keys, args, replicas, timeoutMs);
  if (err && isNoScript(err)) {
    [[err, reply], [waitErr, acked]] = await send(redis, 'eval', script.source, keys, args, replicas, timeoutMs);
  }
  if (err) throw err;
  if (waitErr) throw waitErr;
  if (acked < replicas) {
    throw new NotReplicatedError(`the job is on the master, but ${acked} of ${replicas} replica(s) acknowledged it `
      + `within ${timeoutMs} ms (WAIT): a failover may lose it`);
  }
  return reply;
}

function send(redis, command, scriptOrSha, keys, args, replicas, timeoutMs) {
  return redis.pipeline()[command](scriptOrSha, keys.length, ...keys, ...args).call('WAIT', replicas, timeoutMs).exec();
}
