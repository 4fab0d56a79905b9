// Synthetic, but shaped after the Promela model of checker-anchors §3: five vfio_ap
// paths following the documented lock order (Documentation/s390/vfio-ap-locking.rst:
// ap_perms_mutex -> guests_lock -> kvm->lock -> mdevs_lock), each a few iterations,
// with one task-local step inside every critical section. The pieces are the two
// seed-003 choices: the order in which assign takes its locks and whether the
// in_use callback blocks on guests_lock or trylocks it (-EBUSY).
import type { Kernel, KGen, LockOrder, Mutex } from '../../kernel/index.js';
import type { Scenario, World } from '../scenario.js';

export interface Locks5Pieces {
  /** 'perms-first' (current kernel) or 'guests-first' (seed 003 original). */
  assignOrder: 'perms-first' | 'guests-first';
  /** 'lock' (blocking) or 'trylock' (the seed-003 fix: -EBUSY when taken). */
  inUse: 'lock' | 'trylock';
}

export const defaultLocks5Pieces: Locks5Pieces = Object.freeze({ assignOrder: 'perms-first', inUse: 'lock' });

interface L5 extends World {
  readonly perms: Mutex;
  readonly guests: Mutex;
  readonly kvm: Mutex;
  readonly mdevs: Mutex;
  readonly p: Locks5Pieces;
  readonly iterations: number;
  ebusy: number;
}

function* local(k: Kernel): KGen<void> {
  // A task-local step: a scheduling point that touches nothing shared.
  yield k.atomic_read(k.atomic_init(0, 'local'));
}

function* section(w: L5, locks: readonly Mutex[]): KGen<void> {
  const k = w.k;
  for (const m of locks) yield k.mutex_lock(m);
  yield* local(k);
  for (let i = locks.length - 1; i >= 0; i--) yield k.mutex_unlock(locks[i]!);
}

function* assign(w: L5): KGen<void> {
  for (let i = 0; i < w.iterations; i++)
    yield* w.k.fn('assign_adapter_store', section(w, w.p.assignOrder === 'perms-first' ? [w.perms, w.guests, w.kvm, w.mdevs] : [w.guests, w.perms, w.mdevs]));
}

function* apmaskWrite(w: L5): KGen<void> {
  const k = w.k;
  for (let i = 0; i < w.iterations; i++) {
    yield* k.fn('apmask_store', (function* (): KGen<void> {
      yield k.mutex_lock(w.perms);
      yield* k.fn('vfio_ap_mdev_resource_in_use', (function* (): KGen<void> {
        if (w.p.inUse === 'trylock') {
          if (!(yield k.mutex_trylock(w.guests))) {
            w.ebusy++;
            return;
          }
        } else yield k.mutex_lock(w.guests);
        yield k.mutex_lock(w.mdevs);
        yield* local(k);
        yield k.mutex_unlock(w.mdevs);
        yield k.mutex_unlock(w.guests);
      })());
      yield k.mutex_unlock(w.perms);
    })());
  }
}

function* kvmPath(w: L5, name: string): KGen<void> {
  for (let i = 0; i < w.iterations; i++) yield* w.k.fn(name, section(w, [w.guests, w.kvm, w.mdevs]));
}

function* remove(w: L5): KGen<void> {
  for (let i = 0; i < w.iterations; i++) yield* w.k.fn('vfio_ap_mdev_remove', section(w, [w.guests, w.mdevs]));
}

/**
 * The same lock pattern as straight-line task bodies (no named-function frames):
 * what the throughput benchmark measures, like bench/runtime does.
 */
function* flatTask(w: L5, seq: readonly (readonly Mutex[])[], inUse: boolean): KGen<void> {
  const k = w.k;
  for (let i = 0; i < w.iterations; i++)
    for (const locks of seq) {
      let taken = locks.length;
      for (let j = 0; j < locks.length; j++) {
        if (inUse && j === 1 && w.p.inUse === 'trylock') {
          if (!(yield k.mutex_trylock(locks[j]!))) {
            taken = j;
            break;
          }
        } else yield k.mutex_lock(locks[j]!);
      }
      if (taken === locks.length) yield k.atomic_read(k.atomic_init(0, 'local'));
      for (let j = taken - 1; j >= 0; j--) yield k.mutex_unlock(locks[j]!);
    }
}

/** The order the five paths document (the 2022 lock names: ap_perms_mutex). */
export const LOCKS5_ORDER: LockOrder = Object.freeze({
  name: 'locks5',
  source: 'vfio-ap-locking.rst as of seed 003',
  order: Object.freeze(['ap_perms_mutex', '&matrix_dev->guests_lock', '&kvm->lock', '&matrix_dev->mdevs_lock']),
  nestings: Object.freeze([
    Object.freeze(['ap_perms_mutex', '&matrix_dev->guests_lock'] as const),
    Object.freeze(['&matrix_dev->guests_lock', '&kvm->lock'] as const),
    Object.freeze(['&kvm->lock', '&matrix_dev->mdevs_lock'] as const),
    Object.freeze(['&matrix_dev->guests_lock', '&matrix_dev->mdevs_lock'] as const),
  ]),
});

export function locks5(iterations = 3, name = 'locks5', flat = false): Scenario<L5> {
  return {
    name,
    description: `synthetic: 5 vfio_ap paths x ${iterations} iterations over ap_perms_mutex -> guests_lock -> kvm->lock -> mdevs_lock (checker-anchors §3 Promela shape)`,
    tags: ['synthetic'],
    lockOrder: LOCKS5_ORDER,
    executions: 3000,
    setup(env) {
      const k = env.kernelOnly();
      return {
        k,
        perms: k.mutex_init('ap_perms_mutex'),
        guests: k.mutex_init('&matrix_dev->guests_lock'),
        kvm: k.mutex_init('&kvm->lock'),
        mdevs: k.mutex_init('&matrix_dev->mdevs_lock'),
        p: { ...defaultLocks5Pieces, ...env.pieces<Locks5Pieces>('locks5') },
        iterations,
        ebusy: 0,
      };
    },
    tasks: (w) =>
      flat
        ? [
            ['assign', flatTask(w, [w.p.assignOrder === 'perms-first' ? [w.perms, w.guests, w.kvm, w.mdevs] : [w.guests, w.perms, w.mdevs]], false)],
            ['apmask', flatTask(w, [[w.perms, w.guests, w.mdevs]], true)],
            ['open', flatTask(w, [[w.guests, w.kvm, w.mdevs]], false)],
            ['close', flatTask(w, [[w.guests, w.kvm, w.mdevs]], false)],
            ['remove', flatTask(w, [[w.guests, w.mdevs]], false)],
          ]
        : [
      ['assign', assign(w)],
      ['apmask', apmaskWrite(w)],
      ['open', kvmPath(w, 'vfio_ap_mdev_set_kvm')],
      ['close', kvmPath(w, 'vfio_ap_mdev_unset_kvm')],
      ['remove', remove(w)],
    ],
  };
}
