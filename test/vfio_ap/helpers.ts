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
