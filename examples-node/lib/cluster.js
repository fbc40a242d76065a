// Redis Cluster (protocol.md 15): a REDIS_URL with ?cluster=1 names any node of a cluster. Every
// key of one namespace carries the namespace's hash tag, so a script's keys share one slot and
// ioredis' Cluster sends each call to the master that owns it, following MOVED and ASK.
import Redis from 'ioredis';
import { parseRedisUrl, redacted } from './redis-url.js';

/** Is this URL a Redis Cluster seed (`?cluster=1` or `?cluster=true`, protocol.md 7.2)? */
export function isClusterUrl(url) {
  try {
    return parseRedisUrl(url).cluster;
  } catch {
    return false; // not a valid URL at all: connect() says why
  }
}

/** The seed node and credentials of a cluster URL (lib/redis-url.js: database 0 only). */
export function parseClusterUrl(url) {
  const { host, port, username, password, tls } = parseRedisUrl(url);
  if (tls) throw new Error(`a cluster REDIS_URL starts with redis://, got ${redacted(url)}`);
  return { host, port, username: username ?? undefined, password: password ?? undefined };
}

/**
 * An ioredis Cluster with the same promises as util.js' connect():
 * - commands wait for the cluster while it is unreachable (maxRetriesPerRequest null for
 *   workers), reconnecting with the protocol's backoff (clusterRetryStrategy);
 * - a command whose connection closed before the reply is rejected, never sent again
 *   (retryDelayOnFailover 0): after a failover a script must not run twice behind our back;
 *   the caller treats the outcome as unknown, as on a single Redis;
 * - CLUSTERDOWN and TRYAGAIN (the command did not run: the slot's master is being replaced or
 *   a slot is migrating) are retried after a short wait, and the slot map is refreshed.
 */
export function clusterConnect(url, { retryStrategy, maxRetriesPerRequest }) {
  const { host, port, username, password } = parseClusterUrl(url);
  // A client that does not wait forever (maxRetriesPerRequest set: the CLI, an application's
  // Client) gives up reaching the cluster after that many attempts, as a single Redis's commands
  // fail after that many reconnects; its commands then fail with the reason instead of hanging.
  const clusterRetryStrategy = maxRetriesPerRequest == null ? retryStrategy
    : (times) => (times > maxRetriesPerRequest ? null : retryStrategy(times));
  return new Redis.Cluster([{ host, port }], {
    clusterRetryStrategy,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    maxRedirections: 64, // a failover takes a few seconds of CLUSTERDOWN retries (200 ms each)
    slotsRefreshTimeout: 2000,
    slotsRefreshInterval: 1000, // a promoted replica is found within a second
    enableReadyCheck: true,
    redisOptions: { username, password, maxRetriesPerRequest, autoResendUnfulfilledCommands: false,
      connectTimeout: 2000 },
  });
}
