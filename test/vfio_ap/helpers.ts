// Fixtures for vfio_ap tests: a booted host with vfio_ap, mdev creation, and the
// invariant check that runs after every operation.
import assert from 'node:assert/strict';
import { Host, type HostOptions } from '../../src/host/index.js';
import { vfio_ap_check_invariants } from '../../src/vfio_ap/index.js';

export const MATRIX = '/sys/devices/vfio_ap/matrix';
export const TYPE = `${MATRIX}/mdev_supported_types/vfio_ap-passthrough`;
export const U1 = '62177883-f1bb-47f0-914d-32a22e3a8804';
export const U2 = '4b3a8c6e-9d0f-4a51-8b2e-1f6c7d8e9a0b';
export const U3 = '0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9';

/** A host whose every sysfs write is followed by the invariant check. */
export class TestHost {
  readonly h: Host;
  constructor(opts: HostOptions = {}) {
    this.h = Host.boot({ profile: 'default', ...opts });
    this.check('boot');
  }
  check(what: string): void {
    const v = this.h.vfio_ap ? vfio_ap_check_invariants(this.h.vfio_ap.md) : [];
    assert.deepEqual(v, [], `invariants after ${what}`);
    assert.deepEqual(this.h.k.bugs.map((b) => b.text), [], `no kernel bugs after ${what}`);
  }
  /** echo DATA > PATH; returns the errno (0 on success); checks invariants. */
  w(path: string, data: string): number {
    const e = this.h.tryWrite(path, data);
    this.check(`write ${JSON.stringify(data)} to ${path}`);
    return e;
  }
  /** Like w() but the write must succeed. */
  ok(path: string, data: string): void {
    assert.equal(this.w(path, data), 0, `${path} <- ${JSON.stringify(data)}`);
  }
  r(path: string): string {
    return this.h.read(path);
  }
  mdev(uuid: string): string {
    this.ok(`${TYPE}/create`, uuid);
    return `${MATRIX}/${uuid}`;
  }
  /** Frees adapters and domains from the default drivers: apmask/aqmask relative writes. */
  free(apmask: string, aqmask: string): void {
    if (apmask) this.ok('/sys/bus/ap/apmask', apmask);
    if (aqmask) this.ok('/sys/bus/ap/aqmask', aqmask);
  }
  dmesgSince(seq: number): string[] {
    return this.h.k.log.records(seq).map((r) => r.text);
  }
}

import type { Qemu } from '../../src/qemu/index.js';
import type { MatrixMdev } from '../../src/vfio_ap/index.js';
import { kvm_s390_crycb_masks } from '../../src/kvm/index.js';
import { maskIds, apqn, formatApqn, type Apqn } from '../../src/hw/index.js';
import { qemuRunSync } from '../../src/qemu/index.js';
import { guest_tapq, guest_aqic, type GuestApResult } from '../../src/kvm/index.js';

/** The driver's object for an mdev. */
export function matrixMdev(t: TestHost, uuid: string): MatrixMdev {
  return t.h.vfio_ap!.md.mdev_list.find((m) => m.uuid === uuid)!;
}

/** The APQNs the guest's CRYCB gives it, as "AA.DDDD" strings. */
export function guestApqns(q: Qemu): string[] {
  const c = kvm_s390_crycb_masks(q.kvm!);
  const out: string[] = [];
  for (const a of maskIds(c.apm)) for (const d of maskIds(c.aqm)) out.push(formatApqn(apqn(a, d)));
  return out;
}

/** TAPQ from the guest's vCPU 0. */
export function guestTapq(t: TestHost, q: Qemu, a: Apqn): GuestApResult {
  return qemuRunSync(t.h.k, guest_tapq(q.kvm!.vcpus[0]!, a));
}

/** PQAP(AQIC) from the guest's vCPU 0 (intercepted: vfio_ap's handler answers). */
export function guestAqic(t: TestHost, q: Qemu, a: Apqn, ir: boolean, isc: number, nib: number): GuestApResult {
  return qemuRunSync(t.h.k, guest_aqic(q.kvm!.vcpus[0]!, a, { ir, isc }, nib));
}

/** Counts ZAPQs the machine receives, per APQN. */
export function countZapq(t: TestHost): Map<string, number> {
  const m = t.h.machine;
  const counts = new Map<string, number>();
  const orig = m.zapq.bind(m);
  m.zapq = (a: Apqn, o?: { f?: boolean }) => {
    counts.set(formatApqn(a), (counts.get(formatApqn(a)) ?? 0) + 1);
    return orig(a, o);
  };
  return counts;
}

/** A guest with mdev U1 holding adapters 5,6 x domains 4,0xab (all bound to vfio_ap). */
export function guestSetup(opts: { uuid?: string; launch?: boolean; host?: HostOptions } = {}): { t: TestHost; m: string; q: Qemu | null } {
  const t = new TestHost(opts.host);
  t.free('-5,-6', '-4,-0xab');
  const u = opts.uuid ?? U1;
  const m = t.mdev(u);
  for (const a of ['5', '6']) t.ok(`${m}/assign_adapter`, a);
  for (const d of ['4', '0xab']) t.ok(`${m}/assign_domain`, d);
  const q = opts.launch === false ? null : t.h.launchGuest({ mdevs: [u] });
  if (q) {
    // QEMU's machine reset at start resets the queues (VFIO_DEVICE_RESET): let it finish.
    t.h.advance(100_000_000);
    t.check('guest start');
  }
  return { t, m, q };
}
