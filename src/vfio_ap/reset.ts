// Queue resets (vfio_ap_mdev_reset_queue and the reset-completion work): ZAPQ, then
// a work item polls TAPQ every 20 ms of virtual time, with no upper bound, re-issuing
// ZAPQ when the first one could not start; batch resets issue every ZAPQ first and
// then wait for each. The completion work takes no driver locks: callers flush it
// while holding theirs.
import type { KGen } from '../kernel/index.js';
import { AP_RESPONSE } from '../hw/status.js';
import { formatApqn } from '../hw/apqn.js';
import { AP_RESET_INTERVAL, VFIO_AP_ISC_INVALID, type MatrixDev, type MatrixMdev, type VfioApQueue } from './private.js';
import { vfio_ap_free_aqic_resources } from './irq.js';
import { vfio_ap_warn } from './log.js';

/** apq_status_check(): 0 done, -EBUSY still resetting, -EAGAIN issue ZAPQ again, -EIO failed. */
function apq_status_check(md: MatrixDev, q: VfioApQueue, rc: number): number {
  switch (rc) {
    case AP_RESPONSE.NORMAL:
    case AP_RESPONSE.DECONFIGURED:
    case AP_RESPONSE.CHECKSTOPPED:
      return 0;
    case AP_RESPONSE.RESET_IN_PROGRESS:
    case AP_RESPONSE.BUSY:
      return -16;
    case AP_RESPONSE.ASSOC_SECRET_NOT_UNIQUE:
    case AP_RESPONSE.ASSOC_FAILED:
      return -11;
    default:
      // Newest tree: RC 01 means the queue is gone; nothing to wait for.
      if (rc === AP_RESPONSE.Q_NOT_AVAIL && md.pieces.resetRc01 === 'release') return -19;
      vfio_ap_warn(md, 'apq_status_check', `failed to verify reset of queue ${formatApqn(q.apqn)}: TAPQ rc=${rc}`);
      return -5;
  }
}

/** apq_reset_check(): the reset-completion work. */
export function* apq_reset_check(md: MatrixDev, q: VfioApQueue): KGen<void> {
  const k = md.k;
  const m = md.bus.machine;
  let elapsed = 0;
  for (;;) {
    yield k.msleep(AP_RESET_INTERVAL);
    elapsed += AP_RESET_INTERVAL;
    const st = m.tapq(q.apqn).status;
    const ret = apq_status_check(md, q, st.responseCode);
    if (ret === -5) return;
    if (ret === -19) {
      yield* vfio_ap_free_aqic_resources(md, q);
      return;
    }
    if (ret === -16) {
      k.pr_notice(`vfio_ap: Waited ${elapsed}ms for reset of queue ${formatApqn(q.apqn)} (rc=${st.responseCode}, e=${st.queueEmpty ? 1 : 0}, i=${st.irqEnabled ? 1 : 0})`);
      continue;
    }
    const prev = q.reset_status.responseCode;
    if (prev === AP_RESPONSE.RESET_IN_PROGRESS || prev === AP_RESPONSE.BUSY || prev === AP_RESPONSE.STATE_CHANGE_IN_PROGRESS || ret === -11) {
      setStatus(md, q, m.zapq(q.apqn).status);
      continue;
    }
    if (q.saved_isc !== VFIO_AP_ISC_INVALID) yield* vfio_ap_free_aqic_resources(md, q);
    return;
  }
}

function setStatus(md: MatrixDev, q: VfioApQueue, st: { responseCode: number; queueEmpty: boolean; irqEnabled: boolean }): void {
  q.reset_status = { responseCode: st.responseCode, queueEmpty: st.queueEmpty, irqEnabled: st.irqEnabled };
  q.resetSeq = ++md.seq;
}

/** vfio_ap_mdev_reset_queue(): ZAPQ and, if it started, queue the completion check. */
export function* vfio_ap_mdev_reset_queue(md: MatrixDev, q: VfioApQueue): KGen<void> {
  const k = md.k;
  const st = md.bus.machine.zapq(q.apqn).status;
  setStatus(md, q, st);
  switch (st.responseCode) {
    case AP_RESPONSE.NORMAL:
    case AP_RESPONSE.RESET_IN_PROGRESS:
    case AP_RESPONSE.BUSY:
    case AP_RESPONSE.STATE_CHANGE_IN_PROGRESS:
      yield k.queue_work(k.system_wq, q.reset_work!);
      return;
    case AP_RESPONSE.Q_NOT_AVAIL:
      if (md.pieces.resetRc01 === 'release') {
        yield* vfio_ap_free_aqic_resources(md, q);
        return;
      }
      vfio_ap_warn(md, 'vfio_ap_mdev_reset_queue', `PQAP/ZAPQ for ${formatApqn(q.apqn)} failed with invalid rc=${st.responseCode}`);
      return;
    case AP_RESPONSE.DECONFIGURED:
    case AP_RESPONSE.CHECKSTOPPED:
      yield* vfio_ap_free_aqic_resources(md, q);
      return;
    default:
      vfio_ap_warn(md, 'vfio_ap_mdev_reset_queue', `PQAP/ZAPQ for ${formatApqn(q.apqn)} failed with invalid rc=${st.responseCode}`);
  }
}

/**
 * vfio_ap_mdev_reset_qlist(): all ZAPQs first, then wait for each; -EIO if any
 * queue's final status is not RC 00 (deconfigured and checkstopped count too).
 */
export function* vfio_ap_mdev_reset_qlist(md: MatrixDev, qlist: readonly VfioApQueue[]): KGen<number> {
  const k = md.k;
  for (const q of qlist) yield* vfio_ap_mdev_reset_queue(md, q);
  let ret = 0;
  for (const q of qlist) {
    yield k.flush_work(q.reset_work!);
    if (q.reset_status.responseCode) ret = -5;
  }
  return ret;
}

/** vfio_ap_mdev_reset_queues(): every queue linked to the mdev. */
export function vfio_ap_mdev_reset_queues(md: MatrixDev, mdev: MatrixMdev): KGen<number> {
  return vfio_ap_mdev_reset_qlist(md, [...mdev.qtable.values()]);
}
