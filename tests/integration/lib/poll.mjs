// Waiting for what ewpd does in the background (a reload, a catalogue
// refresh), shared by the test files.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

// Calls fn every intervalMs until it resolves { ok: true, ... } and returns
// that result; after timeoutMs fails with "<what> not seen within N ms"
// and the `detail` of the last result.
export async function pollUntil(fn, timeoutMs, what, intervalMs = 50) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < timeoutMs) {
    last = await fn();
    if (last.ok) return last;
    await sleep(intervalMs);
  }
  assert.fail(`${what} not seen within ${timeoutMs} ms; last: ${last?.detail}`);
}
