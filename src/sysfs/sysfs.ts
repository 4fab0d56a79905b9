// sysfs as userspace sees it: the tree plus open/read/write with the semantics of
// fs/kernfs/file.c and fs/sysfs/file.c, run inside a simulated task because show
// and store take driver locks.
//
// Facts modelled (kernel 6.x):
// * open: sysfs' root has KERNFS_ROOT_EXTRA_OPEN_PERM_CHECK, so even root gets
//   EACCES opening for write a file with no write bit (or for read one with no
//   read bit); other users are checked against the "other" bits (files are 0:0).
// * a file whose ktype has show/store but whose attribute lacks one: the ktype's
//   sysfs_ops decide (dev_attr_show/_store, drv_attr_*: -EIO; bus_attr_*: 0).
// * read: show is called once per open; output is cut at PAGE_SIZE - 1 bytes
//   (sysfs_emit); a raw show returning >= PAGE_SIZE gets "returned bad count".
// * write: one store call per write(2), with at most PAGE_SIZE bytes (the rest
//   is left to the caller's next write); a zero-length write returns 0 without
//   calling store. The buffer is NUL-terminated for the driver.
// * a removed file: calls already inside show/store finish (removal waits for
//   them, kernfs_drain); new ones fail with ENODEV.
import { Errno, E, TaskError, type KGen, type Kernel, type Task, type WaitQueue } from '../kernel/index.js';
import { KernfsTree, PAGE_SIZE, nodePerm, type KAttr, type KDir, type KNode, type Stat } from './kernfs.js';
import { UeventLog, kobject_uevent_env, kobject_get_path, parse_synth_uevent, type KobjAction } from './uevent.js';

export type Access = 'r' | 'w';

/** Who owns a node (root unless chown said otherwise). */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}
const ROOT: Owner = Object.freeze({ uid: 0, gid: 0 });

/**
 * Permission check at open() for a sysfs file of mode `mode` (permission bits or a
 * full st_mode) owned by `owner`, for a caller with `uid` and (primary) `gid`: 0 or
 * E.EACCES. The VFS picks the owner's, the group's or the others' bits, in that order.
 */
export function checkAccess(mode: number, uid: number, op: Access, owner: Owner = ROOT, gid = -1): number {
  const bits = op === 'r' ? 0o444 : 0o222;
  if ((mode & bits) === 0) return E.EACCES; // kernfs' extra open check, root included
  if (uid === 0) return 0; // CAP_DAC_OVERRIDE
  const shift = uid === owner.uid ? 6 : gid === owner.gid ? 3 : 0;
  return mode & ((op === 'r' ? 0o4 : 0o2) << shift) ? 0 : E.EACCES;
}

/** What a chmod/chown asks for (absent: unchanged). */
export interface SetattrRequest {
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

export type ReadResult = { readonly ok: true; readonly data: string } | { readonly ok: false; readonly errno: number };
export type WriteResult = { readonly ok: true; readonly count: number } | { readonly ok: false; readonly errno: number };

export interface IoOptions {
  /** The calling process' uid (default 0, root). */
  uid?: number;
  /** Its gid (default: 0 for root, none for other users). */
  gid?: number;
  /** Name of the task the library API spawns (default "bash" for writes, "cat" for reads). */
  comm?: string;
}

/** A library call that could not finish (deadlock, bug, ...). */
export class SysfsStall extends Error {
  constructor(
    readonly path: string,
    readonly status: string,
  ) {
    super(`sysfs access to ${path} did not complete: ${status}`);
    this.name = 'SysfsStall';
  }
}

export class Sysfs extends KernfsTree {
  readonly uevents: UeventLog;
  /** Woken whenever an active reference is dropped on a removed node. */
  private readonly drainWq: WaitQueue;
  /** The attribute each task is inside show/store of (for remove_self). */
  private readonly inCall = new Map<Task, ActiveCall>();

  constructor(
    readonly k: Kernel,
    opts: { mountpoint?: string; uevents?: UeventLog } = {},
  ) {
    super(opts.mountpoint ?? '/sys');
    this.uevents = opts.uevents ?? new UeventLog();
    this.drainWq = k.init_waitqueue_head('kernfs_drain');
  }

  // ------------------------------------------------------------ I/O in a task

  /** open(O_RDONLY) + read everything + close, from inside a task. */
  *read_gen(k: Kernel, path: string, opts: IoOptions = {}): KGen<ReadResult> {
    // open(): path walk and kernfs_get_active read the tree that device add/del,
    // driver binding and removal change in steps of any kind — an unlocked shared read.
    yield k.sched_point('open');
    const r = this.openAttr(path, 'r', opts.uid ?? 0, opts.gid);
    if (typeof r === 'number') return { ok: false, errno: r };
    const ops = r.ops;
    const ktype = r.parent!.kobj.ktype;
    if (!ops.show) {
      const e = ktype?.missingOp ?? E.EIO;
      return e ? { ok: false, errno: e } : { ok: true, data: '' };
    }
    let out: string;
    const depth = k.opsDepth();
    try {
      out = yield* this.active(k, r, ops.show(k, r.obj));
    } catch (e) {
      k.opsRestore(depth);
      if (e instanceof Errno) return { ok: false, errno: e.errno };
      throw e;
    }
    if (out.length >= PAGE_SIZE) {
      if (ops.rawShow) {
        k.printk(4, `${ktype?.showFn ?? 'show'}: ${ops.name}_show returned bad count`);
        k.printk(4, `fill_read_buffer: ${ktype?.showFn ?? 'show'} returned bad count`);
      }
      out = out.slice(0, PAGE_SIZE - 1);
    }
    return { ok: true, data: out };
  }

  /** open(O_WRONLY) + one write(2) of data + close, from inside a task. */
  *write_gen(k: Kernel, path: string, data: string, opts: IoOptions = {}): KGen<WriteResult> {
    yield k.sched_point('open'); // as in read_gen
    const r = this.openAttr(path, 'w', opts.uid ?? 0, opts.gid);
    if (typeof r === 'number') return { ok: false, errno: r };
    if (data.length === 0) return { ok: true, count: 0 };
    const buf = data.length > PAGE_SIZE ? data.slice(0, PAGE_SIZE) : data;
    const ops = r.ops;
    if (!ops.store) {
      const e = r.parent!.kobj.ktype?.missingOp ?? E.EIO;
      return e ? { ok: false, errno: e } : { ok: true, count: 0 };
    }
    let ret: number | void;
    const depth = k.opsDepth();
    try {
      ret = yield* this.active(k, r, ops.store(k, r.obj, buf));
    } catch (e) {
      k.opsRestore(depth);
      if (e instanceof Errno) return { ok: false, errno: e.errno };
      throw e;
    }
    if (ret === undefined) return { ok: true, count: buf.length };
    if (ret < 0) return { ok: false, errno: -ret };
    return { ok: true, count: ret };
  }

  /** Path resolution and the open() checks; an errno on failure. */
  private openAttr(path: string, op: Access, uid: number, gid: number | undefined): KAttr | number {
    let n: KNode;
    try {
      n = this.lookup(path, true);
    } catch (e) {
      if (e instanceof Errno) return e.errno;
      throw e;
    }
    if (n.type === 'dir') return E.EISDIR;
    if (n.type !== 'file') return E.ENOENT;
    const a = n as KAttr;
    const perm = nodePerm(a);
    const acc = checkAccess(perm.mode, uid, op, perm, gid ?? (uid === 0 ? 0 : -1));
    if (acc) return acc;
    if (a.removed) return E.ENODEV;
    return a;
  }

  /**
   * chmod/chown of a node (kernfs_iop_setattr after setattr_prepare): root may do
   * anything; the owner may change the mode and the group to its own group; anything
   * else is EPERM. The new attributes stay with the node until it is removed (a node
   * created again starts from its default, as after a reboot). Returns 0 or an errno.
   */
  setattr(n: KNode, req: SetattrRequest, caller: Owner = ROOT): number {
    const cur = nodePerm(n);
    const uid = req.uid ?? cur.uid;
    const gid = req.gid ?? cur.gid;
    if (caller.uid !== 0) {
      if (uid !== cur.uid) return E.EPERM; // CAP_CHOWN
      if (gid !== cur.gid && (caller.uid !== cur.uid || gid !== caller.gid)) return E.EPERM;
      if (req.mode !== undefined && caller.uid !== cur.uid) return E.EPERM; // CAP_FOWNER
    }
    const mode = req.mode === undefined ? cur.mode : req.mode & 0o7777;
    if (mode === cur.mode && uid === cur.uid && gid === cur.gid) return 0; // a no-op, as chmod to the same mode
    n.iattr = Object.freeze({ mode, uid, gid });
    if (!n.removed) this.withIattr.add(n);
    return 0;
  }

  /** Runs body holding an active reference on the attribute (kernfs_get_active). */
  private *active<T>(k: Kernel, a: KAttr, body: KGen<T>): KGen<T> {
    if (a.removed) throw new Errno(E.ENODEV);
    const t = k.current;
    const call: ActiveCall = { attr: a, broken: false };
    const prev = t ? this.inCall.get(t) : undefined;
    if (t) this.inCall.set(t, call);
    a.active++;
    try {
      // A frame of its own: the show/store's steps need not resume through the
      // syscall's frames (k.call).
      return (yield k.call(body)) as T;
    } finally {
      if (t) {
        if (prev) this.inCall.set(t, prev);
        else this.inCall.delete(t);
      }
      if (!call.broken) a.active--;
      // kernfs_put_active(): the last reference on a removed node wakes the remover.
      if (a.removed && a.active === 0 && t) yield k.wake_up(this.drainWq);
    }
  }

  // ------------------------------------------------------------ removal

  /**
   * kernfs_remove(): unlinks n (and its subtree), then waits until every show/store
   * running on them has returned. A store removing its own file deadlocks here, as
   * in the kernel; use remove_self_gen() for that.
   */
  *remove_gen(k: Kernel, n: KNode): KGen<void> {
    this.remove(n);
    if (this.busyNodes(n).length === 0) return;
    yield k.wait_event(this.drainWq, () => this.busyNodes(n).length === 0);
  }

  /**
   * kernfs_remove_self() / sysfs_remove_file_self(): called from the store of attribute
   * `a`, removes it without waiting for this very call. Returns false if someone
   * else already removed it.
   */
  *remove_self_gen(k: Kernel, a: KAttr): KGen<boolean> {
    if (a.removed) return false;
    const call = k.current ? this.inCall.get(k.current) : undefined;
    if (call && call.attr === a && !call.broken) {
      // kernfs_break_active_protection(): our own reference no longer counts.
      call.broken = true;
      a.active--;
    }
    yield* this.remove_gen(k, a);
    return true;
  }

  /** Removes the named child of dir if present (sysfs_remove_file / sysfs_remove_link). */
  *remove_child_gen(k: Kernel, dir: KDir, name: string): KGen<void> {
    const n = dir.children.get(name);
    if (n) yield* this.remove_gen(k, n);
  }

  // ------------------------------------------------------------ library API

  /** Reads path in a new task (named opts.comm, default "cat") and runs the scheduler until it exits. */
  read(path: string, opts: IoOptions = {}): ReadResult {
    return this.runSync(path, this.read_gen(this.k, path, opts), opts.comm ?? 'cat');
  }

  /** Writes data to path in a new task (default "bash"), one write(2), synchronously. */
  write(path: string, data: string, opts: IoOptions = {}): WriteResult {
    return this.runSync(path, this.write_gen(this.k, path, data, opts), opts.comm ?? 'bash');
  }

  /** Live host (external time): the result arrives when the task exits; the caller drives k.run(). */
  readAsync(path: string, opts: IoOptions = {}): Promise<ReadResult> {
    return this.runAsync(this.read_gen(this.k, path, opts), opts.comm ?? 'cat');
  }

  writeAsync(path: string, data: string, opts: IoOptions = {}): Promise<WriteResult> {
    return this.runAsync(this.write_gen(this.k, path, data, opts), opts.comm ?? 'bash');
  }

  private runSync<T>(path: string, body: KGen<T>, comm: string): T {
    return runInTask(this.k, comm, body, path);
  }

  private runAsync<T>(body: KGen<T>, comm: string): Promise<T> {
    const t = this.k.spawn(comm, body);
    return new Promise<T>((resolve, reject) => {
      this.k.onExit(t, (u) => (u.error ? reject(u.error) : resolve(u.exitValue as T)));
    });
  }

  // ------------------------------------------------------------ uevents

  /** kobject_uevent_env() for a kobject directory of this tree. */
  kobject_uevent(kobj: KDir, action: KobjAction, extraEnv?: readonly string[] | null): number {
    return kobject_uevent_env(this.uevents, this.k.now(), kobj, action, extraEnv);
  }

  /**
   * kobject_synth_uevent(): what a write to a "uevent" file does. Returns 0 or a
   * negative errno; failures are logged like the kernel's pr_warn.
   */
  kobject_synth_uevent(kobj: KDir, buf: string): number {
    const p = parse_synth_uevent(buf);
    let r: number;
    let msg: string | null = null;
    if ('error' in p) {
      r = -E.EINVAL;
      msg = p.error;
    } else r = this.kobject_uevent(kobj, p.action, p.env);
    if (r) this.k.pr_warn(`synth uevent: ${kobject_get_path(kobj)}: ${msg ?? 'failed to send uevent'}`);
    return r;
  }

  /** stat() convenience that returns null for a missing path. */
  statOrNull(path: string): Stat | null {
    const n = this.find(path, true);
    return n ? this.stat(path) : null;
  }
}

/**
 * Spawns body as a task named comm, runs the scheduler (discrete time) until it
 * exits and returns its value; throws its TaskError, or SysfsStall if it could not
 * finish (deadlock, bug). For synchronous callers: tests, host setup.
 */
export function runInTask<T>(k: Kernel, comm: string, body: KGen<T>, what = comm): T {
  const t = k.spawn(comm, body);
  k.onExit(t, () => {}); // the caller gets the error
  const st = k.runUntilExit(t);
  if (t.error) throw t.error;
  if (!t.done) throw new SysfsStall(what, st);
  return t.exitValue as T;
}

/** One show/store in progress on an attribute. */
interface ActiveCall {
  readonly attr: KAttr;
  /** Its active reference was given up (kernfs_break_active_protection). */
  broken: boolean;
}

/** The errno carried by an Errno or by a TaskError caused by one, else null. */
export function errnoOf(e: unknown): number | null {
  const c = e instanceof TaskError ? e.cause : e;
  return c instanceof Errno ? c.errno : null;
}
