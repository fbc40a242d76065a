// The --queues grammar and the expansion of "*" (protocol.md 7.2), as Python's jobwire/queues.py.
import { assertQueueName, isValidQueueName } from './keys.js';
import { compareUtf8 } from './client.js';

/**
 * Parses a --queues value ("a,b", "high,*") or an array into a queue list (protocol.md 7.2):
 * queue names and at most one "*", comma-separated, nothing trimmed, no empty entry, no repeat.
 */
export function parseQueues(queues) {
  const list = Array.isArray(queues) ? queues.map(String) : String(queues ?? '').split(',');
  if (list.length === 0 || (list.length === 1 && list[0] === '')) {
    throw new TypeError('no queues given (--queues a,b or JOBWIRE_QUEUES)');
  }
  const seen = new Set();
  for (const q of list) {
    if (q !== '*') assertQueueName(q);
    if (seen.has(q)) throw new TypeError(`--queues lists ${JSON.stringify(q)} twice`);
    seen.add(q);
  }
  return list;
}

/**
 * The queues to reserve from: "*" replaced, at its place, by every valid name of `known` that is
 * not listed explicitly, in code point order (protocol.md 7.2).
 */
export function expandQueues(configured, known) {
  if (!configured.includes('*')) return [...configured];
  const rest = known.filter((q) => isValidQueueName(q) && !configured.includes(q)).sort(compareUtf8);
  return configured.flatMap((q) => (q === '*' ? rest : [q]));
}
