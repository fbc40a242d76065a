// Namespace groups (protocol.md 15.2): which namespace a producer puts a queue's jobs in. The
// routing table <home>:jobwire:routes maps a queue to a group; the group's namespace is
// `{home-without-braces:group}`, its own hash tag and so its own slot. spec/routing-vectors.json
// pins route() and namespaces().
import { keys as keyBuilder } from './keys.js';

export const ROUTE_CACHE_MS = 5000; // the longest a producer may cache the table
const GROUP_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** spec/errors.json jobwire.BadRoute: the table maps a queue to an invalid group name. */
export class BadRouteError extends Error {
  constructor(message) {
    super(message);
    this.name = 'jobwire.BadRoute';
  }
}

export function validGroup(group) {
  return typeof group === 'string' && GROUP_RE.test(group);
}

/** `{resque}` + `mail` -> `{resque:mail}`. */
export function groupNamespace(home, group) {
  return `{${home.replace(/[{}]/g, '')}:${group}}`;
}

/** The namespace of `queue`'s jobs, given the table as a plain object (field -> value). */
export function route(home, routes, queue) {
  const group = Object.hasOwn(routes, queue) ? routes[queue] : '';
  if (group === '') return home;
  if (!validGroup(group)) {
    throw new BadRouteError(`the routing table ${keyBuilder(home).routes()} maps queue ${JSON.stringify(queue)} to `
      + `${JSON.stringify(group)}, which is no group name (1-64 of A-Z a-z 0-9 _ . -): nothing was enqueued`);
  }
  return groupNamespace(home, group);
}

/** Byte order of two ASCII strings (group names are ASCII). */
const byBytes = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Every namespace of a home: home first, then the groups' in byte order. */
export function namespaces(home, routes) {
  const groups = [...new Set(Object.values(routes).filter(validGroup))].sort(byBytes);
  return [home, ...groups.map((g) => groupNamespace(home, g))];
}

/**
 * The queues among `queues` (not `*`) that producers put in another namespace than `home`
 * (protocol.md 15.2, "Workers are not routed"): [queue, that namespace or the BadRoute message].
 * A worker of `home` warns about each at start-up.
 */
export function routedElsewhere(home, routes, queues) {
  const found = [];
  for (const queue of queues) {
    if (queue === '*') continue;
    try {
      const ns = route(home, routes, queue);
      if (ns !== home) found.push([queue, ns]);
    } catch (err) {
      if (!(err instanceof BadRouteError)) throw err;
      found.push([queue, err.message]);
    }
  }
  return found;
}

/** The start-up warning for one routed queue, the same words in every language. */
export function routedWarning(home, queue, where) {
  if (!where.startsWith('{')) return `queue ${queue}: ${where}`;
  return `queue ${queue} is routed to namespace ${where} by ${keyBuilder(home).routes()}: new jobs for it go there, `
    + `and this worker serves ${home} only (start a worker with --namespace '${where}')`;
}

/**
 * The routing table of one home namespace. A producer reads one queue's route with HGET (what
 * protocol.md 8.9's user may run), cached for at most ROUTE_CACHE_MS; tools read it all (HGETALL).
 */
export class Router {
  constructor(redis, home, cacheMs = ROUTE_CACHE_MS) {
    this.redis = redis;
    this.home = home;
    this.key = keyBuilder(home).routes();
    this.cacheMs = Math.min(cacheMs, ROUTE_CACHE_MS);
    this.cache = new Map(); // queue -> {at, group}
  }

  async namespaceFor(queue) {
    const now = performance.now();
    let hit = this.cache.get(queue);
    if (!hit || now - hit.at >= this.cacheMs) {
      hit = { at: now, group: (await this.redis.hget(this.key, queue)) ?? '' };
      this.cache.set(queue, hit);
    }
    return route(this.home, hit.group ? { [queue]: hit.group } : {}, queue);
  }

  /** The whole table, read now (for tools). */
  async table() {
    return { ...(await this.redis.hgetall(this.key)) };
  }

  async namespaces() {
    return namespaces(this.home, await this.table());
  }
}
