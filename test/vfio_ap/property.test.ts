// Random operation sequences, run concurrently under seeded random scheduling:
// sysfs assign/unassign/ap_config, apmask/aqmask writes, queue bind/unbind, HMC
// changes, guests starting/stopping/resetting, guest AQIC, mdev create/remove.
// After every round (once things settled) the driver invariants I1-I5 hold, the
// kernel reported nothing (no deadlock, lockdep report, use-after-free, leak ...).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Host } from '../../src/host/index.js';
import { Lockdep, RandomStrategy, type KGen, type Task } from '../../src/kernel/index.js';
import { Qemu, QemuError } from '../../src/qemu/index.js';
import { guest_aqic } from '../../src/kvm/index.js';
import { apqn } from '../../src/hw/index.js';
import { vfio_ap_check_invariants } from '../../src/vfio_ap/index.js';

const UUIDS = ['62177883-f1bb-47f0-914d-32a22e3a8804', '4b3a8c6e-9d0f-4a51-8b2e-1f6c7d8e9a0b'];
const TYPE = '/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough';
const MD = (u: string) => `/sys/devices/vfio_ap/matrix/${u}`;

type Op =
  | { k: 'assign' | 'unassign'; mdev: number; what: 'adapter' | 'domain' | 'control_domain'; id: number }
  | { k: 'ap_config'; mdev: number; apm: number; aqm: number }
  | { k: 'mask'; which: 'apmask' | 'aqmask'; s: string }
  | { k: 'bind' | 'unbind'; a: number; d: number }
  | { k: 'hmc'; what: 'adapter' | 'domain'; id: number; add: boolean }
  | { k: 'create' | 'remove'; mdev: number }
  | { k: 'start' | 'stop' | 'reset'; mdev: number }
  | { k: 'aqic'; mdev: number; a: number; d: number; on: boolean };

const mdevIx = fc.integer({ min: 0, max: 1 });
const id = fc.integer({ min: 0, max: 3 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constantFrom('assign' as const, 'unassign' as const), mdev: mdevIx, what: fc.constantFrom('adapter' as const, 'domain' as const, 'control_domain' as const), id }) },
  fc.record({ k: fc.constant('ap_config' as const), mdev: mdevIx, apm: fc.integer({ min: 0, max: 15 }), aqm: fc.integer({ min: 0, max: 15 }) }),
  fc.record({ k: fc.constant('mask' as const), which: fc.constantFrom('apmask' as const, 'aqmask' as const), s: fc.constantFrom('+0', '-0', '+1', '-1', '+2', '-3', '0xf0', '0x', '+0-3', '-0-3') }),
  fc.record({ k: fc.constantFrom('bind' as const, 'unbind' as const), a: fc.integer({ min: 0, max: 1 }), d: id }),
  fc.record({ k: fc.constant('hmc' as const), what: fc.constantFrom('adapter' as const, 'domain' as const), id: fc.integer({ min: 0, max: 1 }), add: fc.boolean() }),
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom('create' as const, 'remove' as const), mdev: mdevIx }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom('start' as const, 'stop' as const, 'reset' as const), mdev: mdevIx }) },
  fc.record({ k: fc.constant('aqic' as const), mdev: mdevIx, a: fc.integer({ min: 0, max: 1 }), d: id, on: fc.boolean() }),
);

const hexMask = (nibble: number) => `0x${nibble.toString(16)}${'0'.repeat(63)}`;

function runScenario(seed: number, rounds: Op[][], lockdep: Lockdep): void {
  const h = Host.boot({ profile: 'minimal', strategy: new RandomStrategy(seed), lockdep, seed });
  const k = h.k;
  const guests = new Map<number, Qemu>();
  const write = (path: string, data: string) => h.sysfs.write_gen(k, path, data);
  const body = (op: Op): KGen<void> | null => {
    const u = UUIDS[(op as { mdev?: number }).mdev ?? 0]!;
    switch (op.k) {
      case 'assign':
      case 'unassign':
        return (function* (): KGen {
          yield* write(`${MD(u)}/${op.k}_${op.what}`, String(op.id));
        })();
      case 'ap_config':
        return (function* (): KGen {
          yield* write(`${MD(u)}/ap_config`, `${hexMask(op.apm)},${hexMask(op.aqm)},${hexMask(op.aqm)}\n`);
        })();
      case 'mask':
        return (function* (): KGen {
          yield* write(`/sys/bus/ap/${op.which}`, op.s);
        })();
      case 'bind':
      case 'unbind':
        return (function* (): KGen {
          yield* write(`/sys/bus/ap/drivers/vfio_ap/${op.k}`, `0${op.a}.000${op.d}`);
        })();
      case 'hmc': {
        const hmc = h.machine.hmc;
        if (op.what === 'adapter') {
          if (op.add) hmc.addAdapter(op.id);
          else hmc.removeAdapter(op.id);
        } else if (op.add) hmc.addUsageDomain(op.id);
        else hmc.removeUsageDomain(op.id);
        return null; // the CHSC notification spawns the rescan task
      }
      case 'create':
        return (function* (): KGen {
          yield* write(`${TYPE}/create`, u);
        })();
      case 'remove':
        return (function* (): KGen {
          yield* write(`${MD(u)}/remove`, '1');
        })();
      case 'start': {
        if (guests.has(op.mdev)) return null;
        const q = new Qemu(h.qemuEnv(), { name: `g${op.mdev}`, devices: [{ sysfsdev: `/sys/bus/mdev/devices/${u}`, id: 'hostdev0' }] });
        guests.set(op.mdev, q);
        return (function* (): KGen {
          try {
            yield* q.start();
          } catch (e) {
            if (!(e instanceof QemuError)) throw e;
            guests.delete(op.mdev);
          }
        })();
      }
      case 'stop': {
        const q = guests.get(op.mdev);
        if (!q?.running) return null;
        guests.delete(op.mdev);
        return q.quit();
      }
      case 'reset': {
        const q = guests.get(op.mdev);
        return q?.running ? q.system_reset() : null;
      }
      case 'aqic': {
        const q = guests.get(op.mdev);
        const vcpu = q?.running ? q.kvm?.vcpus[0] : undefined;
        if (!vcpu) return null;
        return (function* (): KGen {
          yield* guest_aqic(vcpu, apqn(op.a, op.d), { ir: op.on, isc: 3 }, op.on ? 0x10000 : 0);
        })();
      }
    }
  };
  rounds.forEach((ops, r) => {
    const tasks: Task[] = [];
    for (const op of ops) {
      const b = body(op);
      if (b) tasks.push(k.spawn(`op${r}`, b));
    }
    // Let the round run, and timers (resets, scans, unregister waits) play out.
    h.advance(25_000_000_000);
    const where = `seed ${seed} round ${r} ${JSON.stringify(ops)}`;
    assert.deepEqual(k.bugs.map((b) => b.text), [], where);
    for (const t of tasks) assert.ok(t.done, `${where}: ${t.name} still blocked in ${t.ops.join(' > ')}`);
    assert.deepEqual(vfio_ap_check_invariants(h.vfio_ap!.md), [], where);
  });
  // Tear down: guests quit, mdevs removed; nothing the driver allocated is left over.
  for (const q of guests.values()) if (q.running) q.run(q.quit());
  for (const u of UUIDS) h.sysfs.write(`${MD(u)}/remove`, '1');
  h.advance(1_000_000_000);
  assert.deepEqual(k.bugs, []);
  assert.equal(h.vfio_ap!.md.mdev_list.length, 0);
}

test('property: random concurrent operations keep the invariants, lockdep and lifetimes clean', () => {
  const lockdep = new Lockdep();
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1 << 30 }), fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }), (seed, rounds) => {
      runScenario(seed, [[{ k: 'create', mdev: 0 }, { k: 'mask', which: 'apmask', s: '-0-1' }], ...rounds], lockdep);
    }),
    { numRuns: 60 },
  );
  assert.deepEqual(lockdep.reports.map((r) => r.lines.join('\n')), []);
});
