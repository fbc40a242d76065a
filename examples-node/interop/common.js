// Shared option parsing for the node-resque interop helpers.
import { parseArgs } from 'node:util';
import { isClusterUrl, clusterConnect } from '../lib/cluster.js';

export function interopOptions(usage, { positionals = false } = {}) {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        queues: { type: 'string' },
        namespace: { type: 'string' },
        'redis-url': { type: 'string' },
        timeout: { type: 'string' },
      },
      allowPositionals: positionals,
    });
  } catch (err) {
    process.stderr.write(`${err.message}\n${usage}\n`);
    process.exit(2);
  }
  const { values } = parsed;
  const raw = values['redis-url'] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
  const namespace = values.namespace ?? process.env.JOBWIRE_NAMESPACE ?? 'resque';
  if (isClusterUrl(raw)) {
    // node-resque takes a ready ioredis connection: a Cluster one works while its namespace
    // carries a hash tag (every key it builds starts with the namespace).
    const redis = clusterConnect(raw, { retryStrategy: () => 500, maxRetriesPerRequest: 3 });
    return { values, positionals: parsed.positionals, connection: { redis, namespace } };
  }
  const url = new URL(raw);
  const db = Number((url.pathname || '/0').slice(1) || 0);
  const options = {};
  if (url.password) options.password = decodeURIComponent(url.password);
  if (url.username) options.username = decodeURIComponent(url.username);
  return {
    values,
    positionals: parsed.positionals,
    // node-resque's connection options
    connection: {
      pkg: 'ioredis',
      host: url.hostname || '127.0.0.1',
      port: Number(url.port || 6379),
      database: db,
      namespace,
      options,
    },
  };
}
