import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApQueueSM, ApSmState, ApSmWait, ApSmEvent, ApDevState, type ApMessage, type ApQueueEnv } from '../../src/ap/ap_queue_sm.js';
import { apqn, decodeHwinfo } from '../../src/hw/index.js';
import { makeMachine, MS } from '../hw/helpers.js';

function setup(useIrq = false) {
  const { m, clock } = makeMachine('minimal');
  const timeouts: number[] = [];
  const env: ApQueueEnv = { machine: m, useIrq, isc: 6, nib: 0x1000, armTimeout: (_aq, t) => void timeouts.push(t) };
  const q = apqn(0, 1);
  const depth = decodeHwinfo(m.tapq(q).hwinfo).qd + 1;
  const aq = new ApQueueSM(q, depth, env);
  return { m, clock, aq, q, timeouts, depth };
}

let psmid = 0n;
const msg = (): ApMessage => ({ psmid: ++psmid, msg: new Uint8Array([1, 2, 3]), special: false });

/** Polls like the AP bus: advance time by the wait hint and poll again until NONE. */
function settle(s: ReturnType<typeof setup>, max = 100): ApSmWait {
  let w = ApSmWait.AGAIN as ApSmWait;
  for (let i = 0; i < max; i++) {
    w = s.aq.ap_sm_event_loop(ApSmEvent.POLL);
    if (w === ApSmWait.NONE) return w;
    s.clock.advance(w === ApSmWait.LOW_TIMEOUT ? 40 * MS : 1 * MS);
  }
  return w;
}

test('a new queue resets: RESET_START -> RESET_WAIT until the machine finishes, then IDLE', () => {
  const s = setup();
  assert.equal(s.aq.ap_queue_init_state(), ApSmWait.LOW_TIMEOUT);
  assert.equal(s.aq.sm_state, ApSmState.RESET_WAIT);
  assert.equal(s.aq.resetText(), 'Reset in progress.\n');
  s.clock.advance(20 * MS);
  assert.equal(s.aq.ap_sm_event_loop(ApSmEvent.POLL), ApSmWait.LOW_TIMEOUT); // RC 02 still
  assert.equal(s.aq.sm_state, ApSmState.RESET_WAIT);
  s.clock.advance(40 * MS); // minimal profile: 60 ms reset latency
  assert.equal(s.aq.ap_sm_event_loop(ApSmEvent.POLL), ApSmWait.NONE);
  assert.equal(s.aq.sm_state, ApSmState.IDLE);
  assert.equal(s.aq.dev_state, ApDevState.OPERATING);
  assert.equal(s.aq.resetText(), 'No Reset Timer set.\n');
  assert.equal(s.aq.statesText(), 'OPERATING [IDLE]\n');
});

test('with adapter interrupts the queue enables AQIC after the reset and waits for I=1', () => {
  const s = setup(true);
  s.aq.ap_queue_init_state();
  s.clock.advance(60 * MS);
  const w = s.aq.ap_sm_event_loop(ApSmEvent.POLL);
  assert.equal(s.aq.interrupt, true);
  assert.equal(s.aq.sm_state, ApSmState.IDLE);
  assert.equal(w, ApSmWait.LOW_TIMEOUT);
  assert.equal(s.m.tapq(s.q).status.irqEnabled, true);
});

test('scenario 30: with depth slots, depth requests go out, the next waits in software until a reply', () => {
  const s = setup();
  s.aq.ap_queue_init_state();
  s.clock.advance(60 * MS);
  settle(s);
  const n = s.depth;
  const msgs = Array.from({ length: n + 1 }, msg);
  for (const m of msgs) s.aq.ap_queue_message(m);
  assert.equal(s.aq.pendingq_count, n);
  assert.equal(s.aq.requestq_count, 1);
  assert.equal(s.aq.queue_count, n);
  assert.equal(s.aq.sm_state, ApSmState.QUEUE_FULL);
  assert.equal(s.aq.total_request_count, n + 1);
  assert.equal(s.m.inspectQueue(s.q).outstanding, n, 'the driver never issued the extra NQAP');
  // A reply becomes ready: the next poll receives it and sends the waiting request.
  s.clock.advance(1 * MS);
  s.aq.ap_sm_event_loop(ApSmEvent.POLL);
  assert.equal(s.aq.requestq_count, 0);
  assert.ok(msgs[0]!.done);
  assert.equal(msgs[0]!.rc, 0);
  assert.deepEqual([...msgs[0]!.reply!], [1, 2, 3]); // the default responder echoes
  settle(s);
  assert.ok(msgs.every((m) => m.done && m.rc === 0));
  assert.equal(s.aq.sm_state, ApSmState.IDLE);
});

test('scenario 31: requests the card forgot (RC 0x10 with E=1) are moved back and re-sent', () => {
  const s = setup();
  s.aq.ap_queue_init_state();
  s.clock.advance(60 * MS);
  settle(s);
  const msgs = [msg(), msg(), msg()];
  for (const m of msgs) s.aq.ap_queue_message(m);
  assert.equal(s.aq.pendingq_count, 3);
  s.m.faults.forgetRequests(s.q);
  s.aq.ap_sm_event(ApSmEvent.POLL); // WORKING: read sees 0x10 + E=1, then write re-sends one
  assert.equal(s.aq.pendingq_count + s.aq.requestq_count, 3);
  assert.ok(s.aq.requestq_count >= 2, 'forgotten requests went back to the request list');
  settle(s);
  assert.ok(msgs.every((m) => m.done && m.rc === 0));
});

test('a user reset flushes queued and pending requests with -EAGAIN', () => {
  const s = setup();
  s.aq.ap_queue_init_state();
  s.clock.advance(60 * MS);
  settle(s);
  const a = msg();
  s.aq.ap_queue_message(a);
  s.aq.userReset();
  assert.equal(a.rc, -11);
  assert.equal(s.aq.sm_state, ApSmState.RESET_WAIT);
  assert.equal(s.aq.pendingq_count, 0);
});

test('a request timeout in WORKING resets the queue; events are ignored while unusable', () => {
  const s = setup();
  s.aq.ap_queue_init_state();
  s.clock.advance(60 * MS);
  settle(s);
  s.aq.ap_queue_message(msg());
  assert.equal(s.aq.sm_state, ApSmState.WORKING);
  assert.equal(s.timeouts.at(-1), s.clock.t + 900_000 * MS);
  assert.equal(s.aq.ap_sm_event(ApSmEvent.TIMEOUT), ApSmWait.LOW_TIMEOUT);
  assert.equal(s.aq.sm_state, ApSmState.RESET_WAIT);
  s.aq.config = false;
  assert.equal(s.aq.ap_sm_event(ApSmEvent.POLL), ApSmWait.NONE);
});

test('a card checkstop makes the state machine fail the reset with RC 04 -> ERROR', () => {
  const s = setup();
  s.m.hmc.checkstop(0, true);
  s.aq.ap_queue_init_state();
  assert.equal(s.aq.dev_state, ApDevState.ERROR);
  assert.equal(s.aq.last_err_rc, 4);
  assert.equal(s.aq.statesText(), 'ERROR [RESET_START]\n');
});

test('removal flushes, zaps and leaves the queue uninitiated; messages to it fail -ENODEV', () => {
  const s = setup();
  s.aq.ap_queue_init_state();
  s.clock.advance(60 * MS);
  settle(s);
  const a = msg();
  s.aq.ap_queue_message(a);
  s.aq.shutdownAndZap();
  assert.equal(a.rc, -11);
  assert.equal(s.aq.dev_state, ApDevState.UNINITIATED);
  assert.equal(s.timeouts.at(-1), Infinity);
  const b = msg();
  s.aq.ap_queue_message(b);
  assert.equal(b.rc, -19);
});
