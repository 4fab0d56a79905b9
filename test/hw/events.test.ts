import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apqn, type InterruptEvent } from '../../src/hw/index.js';
import { MS, makeMachine } from './helpers.js';

const Q00 = apqn(0, 0);
const Q01 = apqn(0, 1);

test('an AQIC-enabled queue raises one interruption per reply, delivered by processEvents', () => {
  const { m, clock } = makeMachine();
  const seen: InterruptEvent[] = [];
  const off = m.onInterrupt((e) => seen.push(e));
  m.aqic(Q00, { ir: true, isc: 3 }, 0x1000);
  m.nqap(Q00, 11n, new Uint8Array(4));
  clock.advance(MS / 2);
  m.nqap(Q00, 12n, new Uint8Array(4));
  m.nqap(Q01, 13n, new Uint8Array(4)); // interrupts not enabled there
  assert.equal(m.nextEventTime(), MS);
  assert.equal(m.processEvents(), 0);
  clock.advance(MS / 2);
  assert.equal(m.nextEventTime(), MS, 'due interruption is reported even though it is not in the future');
  assert.equal(m.processEvents(), 1);
  assert.deepEqual(seen, [{ time: MS, apqn: Q00, isc: 3, nib: 0x1000, gisa: 0, gisc: 0, psmid: 11n }]);
  assert.equal(m.nextEventTime(), 1.5 * MS);
  clock.advance(10 * MS);
  assert.equal(m.processEvents(), 1);
  assert.equal(seen[1]!.psmid, 12n);
  assert.equal(seen[1]!.time, 1.5 * MS);
  assert.equal(m.processEvents(), 0, 'each reply interrupts once');
  assert.equal(m.nextEventTime(), undefined);
  off();
  m.nqap(Q00, 14n, new Uint8Array(4));
  clock.advance(MS);
  assert.equal(m.processEvents(), 1);
  assert.equal(seen.length, 2, 'unsubscribed');
});

test('replies that arrived while interrupts were off interrupt when IR is enabled', () => {
  const { m, clock } = makeMachine();
  const seen: InterruptEvent[] = [];
  m.onInterrupt((e) => seen.push(e));
  m.nqap(Q00, 1n, new Uint8Array(1));
  clock.advance(5 * MS);
  assert.equal(m.nextEventTime(), undefined);
  m.aqic(Q00, { ir: true, isc: 6, gisa: 0x8000, gisc: 2 }, 0x42);
  assert.equal(m.nextEventTime(), 5 * MS);
  m.processEvents();
  assert.deepEqual(seen, [{ time: 5 * MS, apqn: Q00, isc: 6, nib: 0x42, gisa: 0x8000, gisc: 2, psmid: 1n }]);
});

test('interruption listeners may issue instructions (DQAP) re-entrantly', () => {
  const { m, clock } = makeMachine();
  const got: bigint[] = [];
  m.onInterrupt((e) => {
    const r = m.dqap(e.apqn);
    if (r.cc === 0) got.push(r.psmid!);
  });
  m.aqic(Q00, { ir: true, isc: 3 }, 0x1000);
  m.nqap(Q00, 1n, new Uint8Array(1));
  m.nqap(Q00, 2n, new Uint8Array(1));
  clock.advance(MS);
  assert.equal(m.processEvents(), 2);
  assert.deepEqual(got, [1n, 2n]);
  assert.equal(m.nextEventTime(), undefined);
});

test('a scheduler loop driven by nextEventTime sees resets complete and replies ready', () => {
  const { m, clock } = makeMachine();
  m.zapq(Q01);
  m.nqap(Q00, 1n, new Uint8Array(1));
  const times: number[] = [];
  for (let t = m.nextEventTime(); t !== undefined; t = m.nextEventTime()) {
    clock.t = Math.max(clock.t, t);
    times.push(clock.t);
    m.processEvents();
  }
  assert.deepEqual(times, [MS, 60 * MS]);
  assert.equal(m.tapq(Q01).cc, 0);
  assert.equal(m.dqap(Q00).psmid, 1n);
});
