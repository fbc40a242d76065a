// The failure record of protocol.md 6.2, written around the payload's raw bytes.
import { failedAt } from './util.js';

/**
 * A failure record built around the raw payload bytes (never re-encoded), with the keys in the
 * order of protocol.md 6.2. `payloadIsObject` false embeds the payload as a JSON string.
 */
export function failureRecord(rawPayload, { exception, error, backtrace = [] }, workerId, queue,
  { date = new Date(), payloadIsObject = true } = {}) {
  const raw = Buffer.isBuffer(rawPayload) ? rawPayload : Buffer.from(String(rawPayload), 'utf8');
  const payload = payloadIsObject ? raw : Buffer.from(JSON.stringify(raw.toString('utf8')), 'utf8');
  return Buffer.concat([
    Buffer.from(`{"failed_at":${JSON.stringify(failedAt(date))},"payload":`, 'utf8'),
    payload,
    Buffer.from(`,"exception":${JSON.stringify(String(exception))},"error":${JSON.stringify(String(error))}` +
      `,"backtrace":${JSON.stringify((backtrace ?? []).map(String))},"worker":${JSON.stringify(workerId)}` +
      `,"queue":${JSON.stringify(queue)}}`, 'utf8'),
  ]);
}
