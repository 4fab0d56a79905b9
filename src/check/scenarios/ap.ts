// AP bus scenarios on the minimal host (2 adapters x 4 domains). Until src/vfio_ap
// lands, the non-default driver is a scenario-local stand-in with vfio_ap's locking
// around the two paths that meet the AP bus: the in_use callback (called by an
// apmask/aqmask write under ap_attr_mutex) and adapter assignment (which must see
// the reservation masks under ap_attr_mutex). Its pieces are the seed-003 choices.
import { E, type Kernel, type KGen, type Mutex } from '../../kernel/index.js';
import type { Host } from '../../host/index.js';
import { AP_DEVICE_ID_MATCH_QUEUE_TYPE, type ApDevice, type ApDriver } from '../../ap/index.js';
import { apqn, maskIds, testBit, type ApMask, type Apqn } from '../../hw/index.js';
import { driver_register } from '../../base/driver.js';
import type { Scenario, ScenarioEnv, TaskList, World } from '../scenario.js';
import { VFIO_AP_LOCK_ORDER } from '../../vfio_ap/lock_order.js';

export interface ApStubPieces {
  /** 'perms-first' (vfio_ap today), 'guests-first' (seed 003 original), 'unlocked-check'. */
  assign: 'perms-first' | 'guests-first' | 'unlocked-check';
  /** in_use: 'lock' blocks on guests_lock; 'trylock' returns -EBUSY when it is taken. */
  inUse: 'lock' | 'trylock';
}

export const defaultApStubPieces: ApStubPieces = Object.freeze({ assign: 'perms-first', inUse: 'lock' });

/** The stand-in for vfio_ap: a non-default queue driver with an assignment table. */
export class ApStub {
  readonly drv: ApDriver;
  readonly guests: Mutex;
  /** APQNs assigned to the (single) mdev. */
  readonly assigned = new Set<Apqn>();
  constructor(
    readonly h: Host,
    readonly p: ApStubPieces,
  ) {
    this.guests = h.k.mutex_init('&matrix_dev->guests_lock');
    this.drv = {
      name: 'vfio_ap',
      bus: h.ap.bus,
      flags: 0,
      ids: [10, 11, 12, 13, 14].map((t) => ({ match_flags: AP_DEVICE_ID_MATCH_QUEUE_TYPE, dev_type: t })),
      probe: (_k: Kernel, _d: ApDevice) => ok(),
      remove: (_k: Kernel, _d: ApDevice) => none(),
      in_use: (k: Kernel, apm: ApMask, aqm: ApMask) => this.in_use(k, apm, aqm),
    };
  }

  /** vfio_ap_mdev_resource_in_use(): is any APQN of apm x aqm assigned? */
  private *in_use(k: Kernel, apm: ApMask, aqm: ApMask): KGen<number> {
    if (this.p.inUse === 'trylock') {
      if (!(yield k.mutex_trylock(this.guests))) return -E.EBUSY!;
    } else yield k.mutex_lock(this.guests);
    let busy = 0;
    for (const a of maskIds(apm)) for (const d of maskIds(aqm)) if (this.assigned.has(apqn(a, d))) busy = -E.EBUSY!;
    yield k.mutex_unlock(this.guests);
    return busy;
  }

  /** assign_adapter_store() for one APQN: refuses APQNs reserved for the default drivers. */
  *assign(k: Kernel, card: number, dom: number): KGen<number> {
    const bus = this.h.ap;
    const reserved = () => testBit(bus.perms.apm, card) && testBit(bus.perms.aqm, dom);
    let rc = 0;
    switch (this.p.assign) {
      case 'perms-first':
        yield k.mutex_lock(bus.ap_attr_mutex);
        yield k.mutex_lock(this.guests);
        if (reserved()) rc = -E.EADDRNOTAVAIL!;
        else this.assigned.add(apqn(card, dom));
        yield k.mutex_unlock(this.guests);
        yield k.mutex_unlock(bus.ap_attr_mutex);
        return rc;
      case 'guests-first':
        yield k.mutex_lock(this.guests);
        yield k.mutex_lock(bus.ap_attr_mutex);
        if (reserved()) rc = -E.EADDRNOTAVAIL!;
        else this.assigned.add(apqn(card, dom));
        yield k.mutex_unlock(bus.ap_attr_mutex);
        yield k.mutex_unlock(this.guests);
        return rc;
      case 'unlocked-check': {
        yield k.sched_point('read ap_perms');
        const r = reserved();
        yield k.mutex_lock(this.guests);
        if (r) rc = -E.EADDRNOTAVAIL!;
        else this.assigned.add(apqn(card, dom));
        yield k.mutex_unlock(this.guests);
        return rc;
      }
    }
  }
}

function* ok(): KGen<number> {
  return 0;
}
function* none(): KGen<void> {}

interface ApWorld extends World {
  readonly host: Host;
  readonly stub: ApStub;
}

/** Boots the minimal host, registers the stub and releases adapter 0 and domain 1 from the default drivers. */
function bootWithStub(env: ScenarioEnv): ApWorld {
  const h = env.boot({ vfio_ap: false });
  const stub = new ApStub(h, { ...defaultApStubPieces, ...env.pieces<ApStubPieces>('ap-stub') });
  h.k.spawn('insmod', driver_register(stub.drv));
  h.settle();
  h.write('/sys/bus/ap/apmask', '-0');
  return { k: h.k, host: h, stub };
}

/** A driver operation a task can run (also the alphabet of the pair scenarios). */
export interface ApOp {
  readonly name: string;
  run(w: ApWorld): KGen<unknown>;
}

function write(path: string, data: string): (w: ApWorld) => KGen<number> {
  return function* (w) {
    const r = yield* w.host.sysfs.write_gen(w.k, path, data);
    return r.ok ? 0 : -r.errno;
  };
}

export const apOps: readonly ApOp[] = [
  { name: 'apmask+0', run: write('/sys/bus/ap/apmask', '+0') },
  { name: 'aqmask-1', run: write('/sys/bus/ap/aqmask', '-1') },
  { name: 'scan', run: write('/sys/bus/ap/scans', '1') },
  { name: 'unbind', run: write('/sys/bus/ap/drivers/vfio_ap/unbind', '00.0002') },
  { name: 'assign', run: (w) => w.stub.assign(w.k, 0, 0) },
];

/** Never both reserved for the default drivers and assigned to a guest. */
function noDoubleOwnership(w: ApWorld): string[] {
  const out: string[] = [];
  for (const q of w.stub.assigned) {
    const card = q >> 16;
    const dom = q & 0xffff;
    if (w.host.ap.ap_owned_by_def_drv(card, dom)) out.push(`APQN ${card.toString(16).padStart(2, '0')}.${dom.toString(16).padStart(4, '0')} is reserved for the default drivers and assigned to the mdev`);
  }
  return out;
}

const legal = new Map<string, readonly number[]>([
  ['apmask+0', [0, -E.EBUSY!]],
  ['aqmask-1', [0]],
  ['scan', [0]],
  ['unbind', [0, -E.ENODEV!]],
  ['assign', [0, -E.EADDRNOTAVAIL!]],
]);

function checkResults(w: ApWorld, results: ReadonlyMap<string, { value: unknown }>, ops: readonly ApOp[], names: readonly string[]): string[] {
  const out = noDoubleOwnership(w);
  ops.forEach((op, i) => {
    const v = results.get(names[i]!)?.value as number;
    if (!legal.get(op.name)!.includes(v)) out.push(`${names[i]} (${op.name}) returned ${v}`);
  });
  return out;
}

/** Tasks running `ops` concurrently, named op names (suffixed when repeated). */
function opScenario(name: string, description: string, ops: readonly ApOp[], extra: Partial<Scenario<ApWorld>> = {}): Scenario<ApWorld> {
  const names = ops.map((o, i) => (ops.findIndex((x) => x.name === o.name) === i ? o.name : `${o.name}#${i}`));
  return {
    name,
    description,
    profile: 'minimal',
    tags: ['ap'],
    // The stand-in driver uses vfio_ap's lock classes: the same documented order.
    lockOrder: VFIO_AP_LOCK_ORDER,
    setup: bootWithStub,
    tasks: (w): TaskList => ops.map((o, i) => [names[i]!, o.run(w)] as const),
    check: (w, results) => checkResults(w, results, ops, names),
    ...extra,
  };
}

export function apScenarios(): Scenario<ApWorld>[] {
  const byName = (n: string) => apOps.find((o) => o.name === n)!;
  const list: Scenario<ApWorld>[] = [
    opScenario(
      'ap-inuse-vs-assign',
      'AP bus, minimal host: an apmask write reserving adapter 0 (in_use callback) races adapter assignment of 00.0000 by the stand-in vfio_ap driver',
      [byName('apmask+0'), byName('assign')],
      { executions: 2000, exhaustive: true },
    ),
    opScenario(
      'ap-bus5',
      'AP bus, minimal host, 5 tasks: apmask and aqmask writes, a forced rescan, an unbind from the stand-in vfio_ap driver and an assignment',
      apOps,
      { executions: 1000 },
    ),
  ];
  // Every unordered pair of operations (with repetition): all proven exhaustively. The
  // mask writes' per-queue reservation checks are read sections of ap_attr_mutex, which
  // DPOR lets commute (before that, apmask+0 with aqmask-1 had C(22,11) orders of them).
  for (let i = 0; i < apOps.length; i++)
    for (let j = i; j < apOps.length; j++) {
      const name = `ap-pair:${apOps[i]!.name}+${apOps[j]!.name}`;
      list.push(
        opScenario(name, `AP bus pair: ${apOps[i]!.name} concurrently with ${apOps[j]!.name}`, [apOps[i]!, apOps[j]!], {
          tags: ['ap', 'pair'],
          executions: 300,
          exhaustive: true,
        }),
      );
    }
  return list;
}
