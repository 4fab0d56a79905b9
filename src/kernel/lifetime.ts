// Object lifetime checking in the spirit of KASAN and kmemleak. Objects the
// kernel would kmalloc/kfree (struct kvm, matrix_mdev, vfio_ap_queue) are
// registered here; kfree poisons them so that any later property access is reported
// as a use-after-free with the allocation and free sites, at no cost on the hot path
// of live objects.

import { markWriteLogged, noteReshape, noteWrite } from './snapshot.js';

export interface AllocSite {
  readonly task: string;
  readonly pid: number;
  /** Operation stack, outermost first. */
  readonly ops: readonly string[];
  readonly step: number;
}

export interface ObjMeta {
  readonly id: number;
  readonly type: string;
  readonly addr: string;
  readonly alloc: AllocSite;
  free: AllocSite | null;
  /** Objects that live for the whole run (module globals) are never leaks. */
  notLeak: boolean;
}

/**
 * The record behind ObjMeta. Every heap object has one and an execution changes a few
 * (a kfree, kmemleak_not_leak): the two mutable fields log their writes, so a world
 * snapshot's restore visits only changed records (markWriteLogged).
 */
class Meta implements ObjMeta {
  private _free: AllocSite | null = null;
  private _notLeak = false;
  constructor(
    readonly id: number,
    readonly type: string,
    readonly addr: string,
    readonly alloc: AllocSite,
  ) {}
  get free(): AllocSite | null {
    return this._free;
  }
  set free(v: AllocSite | null) {
    noteWrite(this);
    this._free = v;
  }
  get notLeak(): boolean {
    return this._notLeak;
  }
  set notLeak(v: boolean) {
    noteWrite(this);
    this._notLeak = v;
  }
}
markWriteLogged(Meta);

/** Thrown into a task that touches a freed object, after the bug was recorded. */
export class KernelOops extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelOops';
  }
}

/**
 * A freed object carries its record itself: the registry forgets it at kfree, so a
 * freed object nobody points to any more is garbage (a live host frees objects for
 * weeks), while a stale pointer still finds the record for its use-after-free report.
 */
const FREED_META: unique symbol = Symbol('apsim.lifetime.freed');

export class Lifetime {
  /** Records of the live objects (freed ones carry theirs: FREED_META). */
  private readonly meta = new Map<object, ObjMeta>();
  private readonly live = new Set<object>();
  private nextId = 0;
  /** Called when a poisoned object is touched: records the bug, returns the Oops to throw. */
  onUseAfterFree: ((m: ObjMeta, prop: string, write: boolean) => KernelOops) | null = null;

  register(obj: object, type: string, alloc: AllocSite): ObjMeta {
    const id = this.nextId++;
    const m: ObjMeta = new Meta(id, type, fakeAddr(0x8880_0000_0000 + id * 0x200), alloc);
    this.meta.set(obj, m);
    this.live.add(obj);
    return m;
  }

  metaOf(obj: object): ObjMeta | undefined {
    return this.meta.get(obj) ?? (obj as { [FREED_META]?: ObjMeta })[FREED_META];
  }

  /** Objects the registry holds: the live ones only (tests; a freed object is not pinned). */
  get records(): number {
    return this.meta.size;
  }

  isLive(obj: object): boolean {
    return this.live.has(obj);
  }

  /**
   * Access watching for the checker's DPOR: every later read or write of one of
   * obj's own data properties calls hook(obj) first, so that a kfree can be related
   * to exactly the steps that touched the object instead of to every step. The
   * properties become accessors over a private store (noted as a reshape: a world
   * snapshot's restore turns them back into plain fields).
   */
  watch(obj: object, hook: (obj: object) => void): void {
    noteReshape(obj);
    const store = new Map<string | symbol, unknown>();
    for (const key of Reflect.ownKeys(obj)) {
      const desc = Object.getOwnPropertyDescriptor(obj, key)!;
      if (!('value' in desc) || desc.configurable !== true || desc.writable !== true) continue;
      store.set(key, desc.value);
      Object.defineProperty(obj, key, {
        configurable: true,
        enumerable: desc.enumerable ?? false,
        get() {
          hook(obj);
          return store.get(key);
        },
        set(v: unknown) {
          hook(obj);
          store.set(key, v);
        },
      });
    }
  }

  liveObjects(): Array<[object, ObjMeta]> {
    return [...this.live].map((o) => [o, this.meta.get(o)!]);
  }

  /** Marks obj freed and poisons it. Returns false if it was already freed. */
  free(obj: object, site: AllocSite): boolean | 'unknown' {
    const m = this.metaOf(obj);
    if (!m) return 'unknown';
    if (m.free) return false;
    m.free = site;
    this.live.delete(obj);
    this.meta.delete(obj);
    this.poison(obj, m);
    // After poisoning: an own property, so no trap sees the lookup.
    Object.defineProperty(obj, FREED_META, { value: m, configurable: true, writable: false, enumerable: false });
    return true;
  }

  private poison(obj: object, m: ObjMeta): void {
    noteReshape(obj);
    const report = (prop: string, write: boolean): KernelOops =>
      this.onUseAfterFree?.(m, prop, write) ?? new KernelOops(`use-after-free of ${m.type}`);
    for (const key of Reflect.ownKeys(obj)) {
      const desc = Object.getOwnPropertyDescriptor(obj, key);
      if (!desc?.configurable) continue;
      Object.defineProperty(obj, key, {
        configurable: true,
        enumerable: desc.enumerable ?? false,
        get() {
          throw report(String(key), false);
        },
        set() {
          throw report(String(key), true);
        },
      });
    }
    // Methods live on the prototype: route every lookup that misses the object
    // through a trap that reports. Always swapped (plain objects too): a changed
    // prototype is how a world snapshot recognises a poisoned object.
    const proto = (Object.getPrototypeOf(obj) as object | null) ?? Object.create(null);
    {
      const trap = new Proxy(proto, {
        get(target, prop, receiver) {
          if (typeof prop === 'symbol' || prop === 'constructor') return Reflect.get(target, prop, receiver);
          throw report(prop, false);
        },
      });
      Object.setPrototypeOf(obj, trap);
    }
  }
}

/** A kernel-looking 64-bit address for reports (deterministic per object). */
export function fakeAddr(n: number): string {
  return 'ffff' + n.toString(16).padStart(12, '0');
}
