// The simulated sysfs as a FUSE file system. Nodes of the kernfs tree become FUSE
// node ids; lookups, stat, readlink and listings come straight from the tree (as
// kernfs answers them: modes and owners (root, unless chown/chmod changed them: kept on
// the node and journaled), size 4096 for attributes, relative link
// text), while reads and writes of attributes run show()/store() as kernel tasks
// (Sysfs.read_gen / write_gen) so they take the driver's locks like the real thing.
//
// Semantics kept from fs/kernfs:
// * open() checks the kernfs "extra open permission" rule (EACCES even for root
//   when the mode has no read/write bit); other users are refused by the VFS
//   through default_permissions before we see the request.
// * show() runs once per read from offset 0; later reads of the same open file are
//   served from that buffer (seq_file); a read at offset 0 again re-runs show().
// * every write(2) is one store() call with the bytes of that write (at most
//   PAGE_SIZE: the rest is returned as a short write, as sysfs does); O_TRUNC and
//   truncate() are accepted and do nothing.
// * a removed node: new lookups fail with ENOENT, opens and I/O on it with ENODEV.
import { readFileSync } from 'node:fs';
import { E, type Task } from '../kernel/index.js';
import { checkAccess, errnoOf, nodePerm, statNode, linkText, type SetattrRequest, type Sysfs, type KNode, type KDir, type KAttr, type KLink } from '../sysfs/index.js';
import { DT_DIR, DT_LNK, DT_REG, FATTR_GID, FATTR_MODE, FATTR_UID, FUSE_ROOT_ID, O_ACCMODE, O_RDONLY, O_RDWR, O_WRONLY } from './fuse/abi.js';
import type { FuseAttr, FuseCtx, FuseDirEntry, FuseEntry, FuseFilesystem, OpenOut, SetattrIn } from './fuse/session.js';
import type { LiveDriver } from './driver.js';

/** A successful store, reported before the reply goes back (the journal hook). */
export interface StoreEvent {
  readonly path: string;
  readonly data: string;
  readonly count: number;
  readonly uid: number;
  readonly gid: number;
  readonly comm: string;
}

/** A successful chmod/chown (the journal hook): the node's path, what was asked, by whom. */
export interface SetattrEvent {
  readonly path: string;
  readonly req: SetattrRequest;
  readonly uid: number;
  readonly gid: number;
}

interface Handle {
  readonly node: KAttr;
  readonly uid: number;
  readonly gid: number;
  readonly comm: string;
  cache: Buffer | null;
}

export class SysfsFuse implements FuseFilesystem {
  /** Node ids of every node the kernel has seen (weak: removed nodes can be collected). */
  private readonly ids = new WeakMap<KNode, number>();
  /** Nodes the kernel holds lookup references on. */
  private readonly byId = new Map<number, { node: KNode; nlookup: number }>();
  private nextId = FUSE_ROOT_ID + 1;
  private readonly handles = new Map<number, Handle>();
  private nextFh = 1;
  /** Requests running a show/store task, for FUSE_INTERRUPT. */
  private readonly inflight = new Map<bigint, Task>();

  constructor(
    private readonly sysfs: Sysfs,
    private readonly driver: LiveDriver,
    /** Called after a successful store, before the reply; may throw to fail the write (EIO). */
    private readonly onStore: (e: StoreEvent) => void = () => {},
    /** Called after a successful chmod/chown, before the reply (may throw: EIO). */
    private readonly onSetattr: (e: SetattrEvent) => void = () => {},
  ) {
    this.ids.set(sysfs.root, FUSE_ROOT_ID);
    this.byId.set(FUSE_ROOT_ID, { node: sysfs.root, nlookup: 1 });
  }

  private idOf(n: KNode): number {
    let id = this.ids.get(n);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(n, id);
    }
    return id;
  }

  private node(id: number): KNode | null {
    return this.byId.get(id)?.node ?? null;
  }

  private attr(n: KNode): FuseAttr {
    const s = statNode(n);
    return { ino: this.idOf(n), mode: s.mode, size: s.size, nlink: s.nlink, uid: s.uid, gid: s.gid };
  }

  // ------------------------------------------------------------ names

  lookup(parent: number, name: string): FuseEntry | number {
    const p = this.node(parent);
    if (!p || p.removed) return -E.ENOENT;
    if (p.type !== 'dir') return -E.ENOTDIR;
    const c = (p as KDir).children.get(name);
    if (!c) return -E.ENOENT;
    const id = this.idOf(c);
    const e = this.byId.get(id);
    if (e) e.nlookup++;
    else this.byId.set(id, { node: c, nlookup: 1 });
    return { nodeid: id, attr: this.attr(c) };
  }

  forget(nodeid: number, nlookup: number): void {
    if (nodeid === FUSE_ROOT_ID) return;
    const e = this.byId.get(nodeid);
    if (!e) return;
    e.nlookup -= nlookup;
    if (e.nlookup <= 0) this.byId.delete(nodeid);
  }

  getattr(nodeid: number): FuseAttr | number {
    const n = this.node(nodeid);
    return n ? this.attr(n) : -E.ENOENT;
  }

  setattr(nodeid: number, s: SetattrIn, ctx: FuseCtx): FuseAttr | number {
    const n = this.node(nodeid);
    if (!n) return -E.ENOENT;
    if (s.valid & (FATTR_MODE | FATTR_UID | FATTR_GID)) {
      // chmod/chown: kernfs keeps them on the node (kernfs_iop_setattr).
      const req: { mode?: number; uid?: number; gid?: number } = {};
      if (s.valid & FATTR_MODE) req.mode = s.mode & 0o7777;
      if (s.valid & FATTR_UID) req.uid = s.uid;
      if (s.valid & FATTR_GID) req.gid = s.gid;
      const before = n.iattr;
      const err = this.sysfs.setattr(n, req, { uid: ctx.uid, gid: ctx.gid });
      if (err) return -err;
      if (n.iattr !== before) {
        try {
          this.onSetattr({ path: n.path, req, uid: ctx.uid, gid: ctx.gid });
        } catch {
          // Not journaled: not done.
          n.iattr = before;
          if (before === null) this.sysfs.withIattr.delete(n);
          return -E.EIO;
        }
      }
    }
    // Truncation (echo > file opens with O_TRUNC) and times: accepted, no effect.
    return this.attr(n);
  }

  readlink(nodeid: number): string | number {
    const n = this.node(nodeid);
    if (!n) return -E.ENOENT;
    if (n.type !== 'link') return -E.EINVAL;
    return linkText(n as KLink);
  }

  // ------------------------------------------------------------ attribute I/O

  open(nodeid: number, flags: number, ctx: FuseCtx): OpenOut | number {
    const n = this.node(nodeid);
    if (!n) return -E.ENOENT;
    if (n.type === 'dir') return -E.EISDIR;
    if (n.type !== 'file') return -E.ELOOP;
    const acc = flags & O_ACCMODE;
    const perm = nodePerm(n);
    if ((acc === O_RDONLY || acc === O_RDWR) && checkAccess(perm.mode, ctx.uid, 'r', perm, ctx.gid)) return -E.EACCES;
    if ((acc === O_WRONLY || acc === O_RDWR) && checkAccess(perm.mode, ctx.uid, 'w', perm, ctx.gid)) return -E.EACCES;
    if (n.removed) return -E.ENODEV;
    const fh = this.nextFh++;
    this.handles.set(fh, { node: n as KAttr, uid: ctx.uid, gid: ctx.gid, comm: processName(ctx.pid), cache: null });
    return { fh };
  }

  read(_nodeid: number, fh: number, offset: number, size: number, ctx: FuseCtx): Buffer | number | Promise<Buffer | number> {
    const h = this.handles.get(fh);
    if (!h) return -E.EBADF;
    if (offset > 0 && h.cache !== null) return h.cache.subarray(offset, offset + size);
    if (h.node.removed) return -E.ENODEV;
    const path = h.node.path;
    return this.driver
      .spawn(h.comm, this.sysfs.read_gen(this.sysfs.k, path, { uid: h.uid, gid: h.gid }), (t) => this.inflight.set(ctx.unique, t))
      .then(
        (r) => {
          this.inflight.delete(ctx.unique);
          if (!r.ok) return -r.errno;
          h.cache = Buffer.from(r.data, 'latin1');
          return h.cache.subarray(offset, offset + size);
        },
        (e: unknown) => {
          this.inflight.delete(ctx.unique);
          return -(errnoOf(e) ?? E.EIO);
        },
      );
  }

  write(_nodeid: number, fh: number, _offset: number, data: Buffer, ctx: FuseCtx): number | Promise<number> {
    const h = this.handles.get(fh);
    if (!h) return -E.EBADF;
    if (h.node.removed) return -E.ENODEV;
    const path = h.node.path;
    const text = data.toString('latin1');
    return this.driver
      .spawn(h.comm, this.sysfs.write_gen(this.sysfs.k, path, text, { uid: h.uid, gid: h.gid }), (t) => this.inflight.set(ctx.unique, t))
      .then(
        (r) => {
          this.inflight.delete(ctx.unique);
          if (!r.ok) return -r.errno;
          if (r.count > 0) this.onStore({ path, data: text.slice(0, r.count), count: r.count, uid: h.uid, gid: h.gid, comm: h.comm });
          return r.count;
        },
        (e: unknown) => {
          this.inflight.delete(ctx.unique);
          return -(errnoOf(e) ?? E.EIO);
        },
      );
  }

  release(_nodeid: number, fh: number): void {
    this.handles.delete(fh);
  }

  interrupt(unique: bigint): void {
    const t = this.inflight.get(unique);
    if (t && !t.done) {
      this.sysfs.k.send_sig(t);
      this.driver.kick();
    }
  }

  // ------------------------------------------------------------ directories

  opendir(nodeid: number): OpenOut | number {
    const n = this.node(nodeid);
    if (!n || n.removed) return -E.ENOENT;
    if (n.type !== 'dir') return -E.ENOTDIR;
    return { fh: 0 };
  }

  readdir(nodeid: number): FuseDirEntry[] | number {
    const n = this.node(nodeid);
    if (!n || n.removed) return -E.ENOENT;
    if (n.type !== 'dir') return -E.ENOTDIR;
    const d = n as KDir;
    const out: FuseDirEntry[] = [];
    for (const name of [...d.children.keys()].sort()) {
      const c = d.children.get(name)!;
      out.push({ name, ino: this.idOf(c), type: c.type === 'dir' ? DT_DIR : c.type === 'link' ? DT_LNK : DT_REG });
    }
    return out;
  }

  releasedir(): void {}

  /** Open file handles (status). */
  get openHandles(): number {
    return this.handles.size;
  }
}

/** Recently read process names: pid -> [comm, read at (ms)]. */
const commCache = new Map<number, [string, number]>();
const COMM_TTL_MS = 1000;

/**
 * The calling process' name for the task's comm (as dmesg and lockdep show it),
 * cached for a second per pid (a shell loop opens from the same pid all the time).
 */
function processName(pid: number): string {
  if (pid <= 0) return 'fuse';
  const now = Date.now();
  const c = commCache.get(pid);
  if (c && now - c[1] < COMM_TTL_MS) return c[0];
  let comm = 'fuse';
  try {
    comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim() || 'fuse';
  } catch {
    /* the process is gone */
  }
  if (commCache.size > 1024) commCache.clear();
  commCache.set(pid, [comm, now]);
  return comm;
}
