// Protocol 1.3's quiet idle beats (protocol.md 16.1, 16.2): the idle beat period, and one
// heartbeat.lua renew call for all the workers of a process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, waitFor, sleep } from './helpers.js';
import { WorkerProcess, stderrLogger } from '../lib/worker.js';
import { idleBeatMs } from '../lib/beats.js';

const quiet = stderrLogger('silent');
let server;

before(async () => { server = await startRedis(); }, { timeout: 30000 });
after(async () => { await server?.stop(); }, { timeout: 30000 });

test('the idle beat period is max(heartbeat, min(2 x heartbeat, lease / 3))', () => {
  assert.equal(idleBeatMs(5000, 30000), 10000);
  assert.equal(idleBeatMs(250, 1500), 500);
  assert.equal(idleBeatMs(250, 600), 250); // lease / 3 is shorter than a beat
  assert.equal(idleBeatMs(1000, 60000), 2000);
});

async function calls(r, command) {
  const line = (await r.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
  return line ? Number(/calls=(\d+)/.exec(line)[1]) : 0;
}

test('an idle process of 3 workers renews all three leases with one ZADD per idle beat', { timeout: 30000 }, async () => {
  const r = server.redis;
  const p = new WorkerProcess({ queues: 'q', concurrency: 3, redisUrl: server.url, blockTimeoutMs: 5000,
    heartbeatMs: 200, leaseMs: 1200, logger: quiet }); // idle beats every 400 ms
  const done = p.run();
  try {
    await waitFor(() => r.scard('resque:workers').then((n) => n === 3), { what: '3 registered' });
    await sleep(600); // past the first beat: idle beats now
    const zadds = await calls(r, 'zadd');
    await sleep(2000); // longer than the lease: only the renews keep the three registered
    const beats = (await calls(r, 'zadd')) - zadds;
    const now = Date.now();
    for (const w of p.workers) {
      assert.ok(Number(await r.zscore('resque:jobwire:leases', w.id)) > now, `${w.id}: lease renewed`);
    }
    // one renew call (one ZADD for the three ids) per 400 ms, not three beats per 200 ms (30)
    assert.ok(beats >= 3 && beats <= 7, `${beats} ZADDs in 2 s`);
  } finally {
    p.quit();
    await done;
  }
});
