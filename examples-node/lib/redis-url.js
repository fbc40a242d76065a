// The Redis URL of protocol.md 7.2, checked before anything connects: a bad one is a usage error
// (exit status 2) whose message never shows the password. ioredis parses the URL again to connect;
// this module only decides what is valid and what the parts are
// (conformance/vectors/v1/redis-urls.json, which Python and C check too).

export class InvalidRedisUrl extends Error {}

const DIGITS = /^[0-9]+$/;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})|%00/;

/** url with its password shown as *** (for messages and logs). */
export function redacted(url) {
  const sep = url.indexOf('://');
  if (sep < 0) return url;
  const rest = url.slice(sep + 3);
  const authority = rest.split(/[/?]/, 1)[0];
  const at = authority.lastIndexOf('@');
  const colon = authority.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return url;
  return `${url.slice(0, sep + 3)}${authority.slice(0, colon)}:***${rest.slice(at)}`;
}

function decoded(part, what, url) {
  if (BAD_ESCAPE.test(part)) throw new InvalidRedisUrl(`bad %-escape in the ${what} of the Redis URL ${redacted(url)}`);
  try {
    return decodeURIComponent(part);
  } catch {
    throw new InvalidRedisUrl(`the ${what} of the Redis URL ${redacted(url)} is not UTF-8 once decoded`);
  }
}

/** The parts of url ({host, port, db, username, password, cluster, tls}), or InvalidRedisUrl. */
export function parseRedisUrl(url) {
  const shown = redacted(url);
  const sep = url.indexOf('://');
  const scheme = sep < 0 ? '' : url.slice(0, sep);
  if (scheme !== 'redis' && scheme !== 'rediss') {
    throw new InvalidRedisUrl(`a Redis URL starts with redis:// or rediss://, got ${JSON.stringify(shown)}`);
  }
  let rest = url.slice(sep + 3);
  const q = rest.indexOf('?');
  const query = q < 0 ? '' : rest.slice(q + 1);
  if (q >= 0) rest = rest.slice(0, q);
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  const at = authority.lastIndexOf('@');
  let username = null;
  let password = null;
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    username = decoded(colon < 0 ? userinfo : userinfo.slice(0, colon), 'user name', url) || null;
    if (colon >= 0) password = decoded(userinfo.slice(colon + 1), 'password', url) || null;
  }
  const hostport = authority.slice(at + 1);
  const colon = hostport.indexOf(':');
  const host = colon < 0 ? hostport : hostport.slice(0, colon);
  if (!host) throw new InvalidRedisUrl(`no host in the Redis URL ${JSON.stringify(shown)}`);
  let port = 6379;
  if (colon >= 0) {
    const text = hostport.slice(colon + 1);
    if (!DIGITS.test(text) || Number(text) < 1 || Number(text) > 65535) {
      throw new InvalidRedisUrl(`bad port ${JSON.stringify(text)} in the Redis URL ${JSON.stringify(shown)} (1-65535)`);
    }
    port = Number(text);
  }
  let db = 0;
  if (path) {
    if (!DIGITS.test(path)) throw new InvalidRedisUrl(`bad database number ${JSON.stringify(path)} in the Redis URL ${JSON.stringify(shown)}`);
    db = Number(path);
  }
  const flag = new URLSearchParams(query).get('cluster');
  const cluster = flag === '1' || flag === 'true';
  if (cluster && db !== 0) throw new InvalidRedisUrl(`Redis Cluster has only database 0, not ${db} (${shown})`);
  return { host, port, db, username, password, cluster, tls: scheme === 'rediss' };
}
