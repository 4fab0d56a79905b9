// The kernfs tree behind sysfs: directories (kobjects, ksets, attribute-group
// directories), attribute files and symlinks, with path resolution the way the VFS
// walks it (symlinks followed, ELOOP after 40), stat as kernfs fills inodes, and
// kernfs "active references" so that removal of a node waits for show/store calls
// running on it (kernfs_drain) and new calls on a removed node fail with ENODEV.
//
// Memory: one small object per node; directory children in a Map (O(1) lookup
// per component, O(depth) per path). Attribute files point at a shared AttrOps
// descriptor plus the owning object, so there is no closure per device.
import { Errno, E, markWriteLogged, noteWrite, type KGen, type Kernel } from '../kernel/index.js';
import type { KsetUeventOps } from './uevent.js';

export const PAGE_SIZE = 4096;
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
/** The VFS limit on symlinks followed in one path walk (MAXSYMLINKS). */
export const MAXSYMLINKS = 40;

/**
 * An attribute's operations, shared by all objects that carry it (a struct
 * device_attribute / bus_attribute / driver_attribute). `obj` is the owning object
 * (the device, bus, driver ...). show returns the text; store returns the byte
 * count consumed (or nothing: the whole buffer), a negative errno, or throws Errno.
 */
export interface AttrOps<O = any> {
  readonly name: string;
  /** Permission bits (0444, 0644, 0200 ...). */
  readonly mode: number;
  show?(k: Kernel, obj: O): KGen<string>;
  store?(k: Kernel, obj: O, buf: string): KGen<number | void>;
  /**
   * The show function writes the page itself (sprintf) instead of sysfs_emit():
   * output of PAGE_SIZE bytes or more is then reported as a "bad count" and cut,
   * rather than silently truncated at PAGE_SIZE - 1 like sysfs_emit() does.
   */
  readonly rawShow?: boolean;
}

/**
 * The kobj_type's sysfs_ops as far as they are observable: what a read or write of
 * an attribute without show/store gives (dev_attr_show and friends return -EIO; the
 * bus ones return 0), and the name printed in "returned bad count" warnings.
 */
export interface Ktype {
  readonly name: string;
  /** errno (positive) for a missing show/store, or 0 for "0 bytes". */
  readonly missingOp: number;
  /** The sysfs_ops->show symbol, e.g. "dev_attr_show". */
  readonly showFn: string;
}

export const kobj_ktype: Ktype = { name: 'kobj', missingOp: E.EIO, showFn: 'kobj_attr_show' };

export type NodeType = 'dir' | 'file' | 'link';

/**
 * A sysfs node. Most objects of a booted world are these, and an execution changes a
 * handful: so the fields that change after construction are setters that log the node
 * for world snapshots (markWriteLogged), and a restore visits only logged nodes.
 */
export abstract class KNode {
  private _parent: KDir | null = null;
  private _active = 0;
  private _removed = false;
  private _iattr: KIattr | null = null;
  constructor(readonly name: string) {}
  /** What chmod/chown set (kernfs_iop_setattr); null: the creation mode, owned by root. */
  get iattr(): KIattr | null {
    return this._iattr;
  }
  set iattr(v: KIattr | null) {
    noteWrite(this);
    this._iattr = v;
  }
  get parent(): KDir | null {
    return this._parent;
  }
  set parent(v: KDir | null) {
    noteWrite(this);
    this._parent = v;
  }
  /** kernfs active references: show/store calls in progress. */
  get active(): number {
    return this._active;
  }
  set active(v: number) {
    noteWrite(this);
    this._active = v;
  }
  /** Set by removal (kernfs_deactivate): new opens and calls get ENODEV. */
  get removed(): boolean {
    return this._removed;
  }
  set removed(v: boolean) {
    noteWrite(this);
    this._removed = v;
  }
  abstract readonly type: NodeType;

  /** Absolute path, e.g. "/sys/devices/ap/card05". */
  get path(): string {
    return pathOf(this);
  }

  /** Depth below the root (the root is 0). */
  get depth(): number {
    let d = 0;
    for (let n = this.parent; n !== null; n = n.parent) d++;
    return d;
  }
}

function pathOf(node: KNode): string {
  const parts: string[] = [];
  let n: KNode = node;
  while (n.parent !== null) {
    parts.push(n.name);
    n = n.parent;
  }
  const mount = n instanceof KDir ? (n.mountpoint ?? '') : '';
  return parts.length === 0 ? mount || '/' : `${mount}/${parts.reverse().join('/')}`;
}

function kobjOf(dir: KDir): KDir {
  let d = dir;
  while (d.ktype === null && d.parent !== null) d = d.parent;
  return d;
}

export class KDir extends KNode {
  readonly type = 'dir' as const;
  private readonly _children = new Map<string, KNode>();
  /**
   * Attribute files created but not yet materialized, as flat [ops, obj, mode]
   * triples. Most of a big host's 65,536 queue directories are never looked at, so
   * their attribute nodes are built on the first access to the directory.
   */
  private _pending: unknown[] | null = null;
  get pending(): unknown[] | null {
    return this._pending;
  }
  set pending(v: unknown[] | null) {
    noteWrite(this);
    this._pending = v;
  }

  get children(): Map<string, KNode> {
    if (this.pending !== null) this.materialize();
    return this._children;
  }

  private materialize(): void {
    const p = this.pending!;
    this.pending = null;
    for (let i = 0; i < p.length; i += 3) {
      const ops = p[i] as AttrOps;
      if (this._children.has(ops.name)) throw new Errno(E.EEXIST, `sysfs: cannot create duplicate filename '${this.path}/${ops.name}'`);
      const a = new KAttr(ops.name, ops, p[i + 1], p[i + 2] as number);
      a.parent = this;
      this._children.set(ops.name, a);
    }
  }

  /** Drops pending attributes of a removed directory (they never existed). */
  dropPending(): void {
    this.pending = null;
  }

  /** Whether name is taken, without materializing pending attributes. */
  hasName(name: string): boolean {
    if (this._children.has(name)) return true;
    const p = this.pending;
    if (p !== null) for (let i = 0; i < p.length; i += 3) if ((p[i] as AttrOps).name === name) return true;
    return false;
  }

  /** Inserts a node without materializing pending attributes (KernfsTree.add). */
  attach(n: KNode): void {
    this._children.set(n.name, n);
  }
  readonly mode = 0o755;
  private _kset: Kset | null = null;
  private _ktype: Ktype | null = null;
  private _priv: unknown = null;
  private _mountpoint: string | undefined = undefined;
  /** For kobject directories: the kset the kobject belongs to (kobj->kset). */
  get kset(): Kset | null {
    return this._kset;
  }
  set kset(v: Kset | null) {
    noteWrite(this);
    this._kset = v;
  }
  /** For kobject directories: its kobj_type (null for group directories). */
  get ktype(): Ktype | null {
    return this._ktype;
  }
  set ktype(v: Ktype | null) {
    noteWrite(this);
    this._ktype = v;
  }
  /** The object this kobject embeds in (a Device, BusType, ...). */
  get priv(): unknown {
    return this._priv;
  }
  set priv(v: unknown) {
    noteWrite(this);
    this._priv = v;
  }
  /** kobj->uevent_suppress (nothing in the model suppresses uevents yet). */
  readonly uevent_suppress: boolean = false;
  /** Only the root: the mount point its paths start with. */
  get mountpoint(): string | undefined {
    return this._mountpoint;
  }
  set mountpoint(v: string | undefined) {
    noteWrite(this);
    this._mountpoint = v;
  }

  /** The nearest kobject directory at or above this one (group dirs belong to it). */
  get kobj(): KDir {
    return kobjOf(this);
  }

  /** Number of subdirectories (kernfs dir.subdirs, for st_nlink). */
  get subdirs(): number {
    let n = 0;
    for (const c of this.children.values()) if (c.type === 'dir') n++;
    return n;
  }
}

/** A kset: a kobject directory whose member kobjects share uevent operations. */
export class Kset extends KDir {
  private _uevent_ops: KsetUeventOps | null = null;
  get uevent_ops(): KsetUeventOps | null {
    return this._uevent_ops;
  }
  set uevent_ops(v: KsetUeventOps | null) {
    noteWrite(this);
    this._uevent_ops = v;
  }
}

export class KAttr extends KNode {
  readonly type = 'file' as const;
  constructor(
    name: string,
    readonly ops: AttrOps,
    /** The owning object passed to show/store. */
    readonly obj: unknown,
    readonly mode: number,
  ) {
    super(name);
  }
}

export class KLink extends KNode {
  readonly type = 'link' as const;
  constructor(
    name: string,
    /** kernfs keeps the target node; the relative text is computed at readlink. */
    readonly target: KNode,
  ) {
    super(name);
  }
}

markWriteLogged(KNode);

/** A node's owner and permission bits after chmod/chown (frozen: a new one per change). */
export interface KIattr {
  /** Permission bits, setuid/setgid/sticky included (S_IALLUGO). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** Root-owned defaults by mode: every open and stat asks, none allocates. */
const rootOwned: KIattr[] = [];

/** The permission bits, owner and group a node has now. */
export function nodePerm(n: KNode): KIattr {
  if (n.iattr !== null) return n.iattr;
  const mode = n.type === 'dir' ? (n as KDir).mode : n.type === 'file' ? (n as KAttr).mode : 0o777;
  return (rootOwned[mode] ??= Object.freeze({ mode, uid: 0, gid: 0 }));
}

export interface Stat {
  readonly type: NodeType;
  /** st_mode including the file type bits. */
  readonly mode: number;
  readonly size: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
}

/** What kernfs reports: attribute files have i_size PAGE_SIZE, dirs and links 0. */
export function statNode(n: KNode): Stat {
  const { mode, uid, gid } = nodePerm(n);
  switch (n.type) {
    case 'dir':
      return { type: 'dir', mode: S_IFDIR | mode, size: 0, uid, gid, nlink: (n as KDir).subdirs + 2 };
    case 'file':
      return { type: 'file', mode: S_IFREG | mode, size: PAGE_SIZE, uid, gid, nlink: 1 };
    default:
      return { type: 'link', mode: S_IFLNK | mode, size: 0, uid, gid, nlink: 1 };
  }
}

/**
 * The relative text of a symlink, computed like kernfs_get_target_path(): "../"
 * for every level from the link's directory up to the common ancestor, then the
 * path down to the target.
 */
export function linkText(link: KLink): string {
  const from = link.parent;
  const to = link.target;
  if (from === null) return to.name;
  // Proper ancestors of the target, root first: the base must be one of them.
  const chain: KNode[] = [];
  for (let n: KNode | null = to.parent; n !== null; n = n.parent) chain.push(n);
  chain.reverse();
  const onChain = new Set<KNode>(chain);
  let ups = 0;
  let base: KNode | null = from;
  while (base !== null && base.parent !== null && !onChain.has(base)) {
    base = base.parent;
    ups++;
  }
  if (base === null || !onChain.has(base)) return to.path; // detached target
  const down = chain.slice(chain.indexOf(base) + 1).map((n) => n.name);
  down.push(to.name);
  return '../'.repeat(ups) + down.join('/');
}

/** Splits a path into its non-empty components. */
function components(p: string): string[] {
  // A scan instead of split + filter: every sysfs open() walks a path.
  const out: string[] = [];
  let i = 0;
  while (i < p.length) {
    let j = p.indexOf('/', i);
    if (j < 0) j = p.length;
    if (j > i && !(j === i + 1 && p.charCodeAt(i) === 46)) out.push(p.slice(i, j)); // not "" or "."
    i = j + 1;
  }
  return out;
}

/**
 * The tree with its root at the mount point (default "/sys"). Paths given to it are
 * absolute and must start with the mount point.
 */
export class KernfsTree {
  readonly root: KDir;
  /** Nodes chmod/chown changed, in the order of their first change (dropped on removal). */
  readonly withIattr = new Set<KNode>();

  /** The mount point's path components (paths given to the tree start with them). */
  private readonly mountParts: readonly string[];

  constructor(readonly mountpoint = '/sys') {
    this.root = new KDir('');
    this.root.mountpoint = mountpoint;
    this.mountParts = Object.freeze(components(mountpoint));
  }

  // ------------------------------------------------------------ resolution

  /**
   * Resolves path to a node: intermediate symlinks are always followed, the last
   * component only if follow. Throws Errno ENOENT / ENOTDIR / ELOOP.
   */
  lookup(path: string, follow = true): KNode {
    const mp = this.mountParts;
    const parts = components(path);
    for (let i = 0; i < mp.length; i++) if (parts[i] !== mp[i]) throw new Errno(E.ENOENT, path);
    const links = { n: 0 };
    return this.walkFrom(this.root, parts, mp.length, follow, links, path);
  }

  /** lookup() returning null instead of throwing ENOENT. */
  find(path: string, follow = true): KNode | null {
    try {
      return this.lookup(path, follow);
    } catch (e) {
      if (e instanceof Errno && e.errno === E.ENOENT) return null;
      throw e;
    }
  }

  /** Walks parts[from..] from start. */
  private walkFrom(start: KDir, parts: readonly string[], from: number, follow: boolean, links: { n: number }, orig: string): KNode {
    let cur: KNode = start;
    for (let i = from; i < parts.length; i++) {
      const c = parts[i]!;
      const last = i === parts.length - 1;
      if (cur.type !== 'dir') throw new Errno(E.ENOTDIR, orig);
      const dir = cur as KDir;
      let next: KNode | undefined;
      if (c === '..') next = dir.parent ?? dir;
      else next = dir.children.get(c);
      if (next === undefined) throw new Errno(E.ENOENT, orig);
      if (next.type === 'link' && (!last || follow)) next = this.followLink(next as KLink, links, orig);
      cur = next;
    }
    return cur;
  }

  private followLink(l: KLink, links: { n: number }, orig: string): KNode {
    if (++links.n > MAXSYMLINKS) throw new Errno(E.ELOOP, orig);
    const text = linkText(l);
    const base = text.startsWith('/') ? this.root : l.parent ?? this.root;
    const abs = text.startsWith('/');
    return this.walkFrom(base, components(text), abs ? this.mountParts.length : 0, true, links, orig);
  }

  lstat(path: string): Stat {
    return statNode(this.lookup(path, false));
  }

  stat(path: string): Stat {
    return statNode(this.lookup(path, true));
  }

  readlink(path: string): string {
    const n = this.lookup(path, false);
    if (n.type !== 'link') throw new Errno(E.EINVAL, path);
    return linkText(n as KLink);
  }

  /**
   * Directory entries without "." and "..", sorted by name. (kernfs itself returns
   * them in hash order, which no tool relies on; sorting keeps us deterministic.)
   */
  readdir(path: string): string[] {
    const n = this.lookup(path, true);
    if (n.type !== 'dir') throw new Errno(E.ENOTDIR, path);
    return [...(n as KDir).children.keys()].sort(byteOrder);
  }

  /** Every node below dir (default the root), depth-first, entries sorted. */
  *walk(dir: KDir = this.root): Generator<KNode, void, undefined> {
    const names = [...dir.children.keys()].sort(byteOrder);
    for (const name of names) {
      const c = dir.children.get(name)!;
      yield c;
      if (c.type === 'dir') yield* this.walk(c as KDir);
    }
  }

  // ------------------------------------------------------------ construction

  /** kernfs_create_dir(): EEXIST if the name is taken. */
  mkdir(parent: KDir, name: string, mode = 0o755): KDir {
    return this.add(parent, Object.assign(new KDir(name), { mode }));
  }

  /** A kset directory (kset_create_and_add / kset_register). */
  mkset(parent: KDir, name: string, ktype: Ktype = kobj_ktype): Kset {
    const s = new Kset(name);
    s.ktype = ktype;
    return this.add(parent, s);
  }

  /** A kobject directory (kobject_add): a dir with ktype, kset and owner. */
  mkobj(parent: KDir, name: string, ktype: Ktype, priv: unknown, kset: Kset | null): KDir {
    const d = new KDir(name);
    d.ktype = ktype;
    d.priv = priv;
    d.kset = kset;
    return this.add(parent, d);
  }

  /** sysfs_create_file(): the mode is the attribute's, masked to permission bits. */
  createFile(dir: KDir, ops: AttrOps, obj: unknown, mode = ops.mode): KAttr {
    // Attribute descriptors are `static const` in the kernel; frozen, a world
    // snapshot need not save or restore them.
    Object.freeze(ops);
    return this.add(dir, new KAttr(ops.name, ops, obj, mode & 0o777));
  }

  /**
   * sysfs_create_file() for attribute groups: the node is built when the directory
   * is first accessed (duplicates are reported then).
   */
  createFileLazy(dir: KDir, ops: AttrOps, obj: unknown, mode = ops.mode): void {
    if (dir.removed) throw new Errno(E.ENOENT, `${dir.path} is removed`);
    (dir.pending ??= []).push(Object.freeze(ops), obj, mode & 0o777);
  }

  /** sysfs_create_link(dir, target, name) */
  createLink(dir: KDir, target: KNode, name: string): KLink {
    return this.add(dir, new KLink(name, target));
  }

  private add<T extends KNode>(parent: KDir, n: T): T {
    if (parent.removed) throw new Errno(E.ENOENT, `${parent.path} is removed`);
    if (parent.hasName(n.name)) throw new Errno(E.EEXIST, `sysfs: cannot create duplicate filename '${parent.path}/${n.name}'`);
    n.parent = parent;
    parent.attach(n);
    return n;
  }

  /**
   * Unlinks n and everything below it at once and deactivates them (new calls get
   * ENODEV). Does not wait for calls in progress: see Sysfs.remove_gen().
   */
  remove(n: KNode): void {
    const p = n.parent;
    if (p !== null && p.children.get(n.name) === n) p.children.delete(n.name);
    this.deactivate(n);
  }

  private deactivate(n: KNode): void {
    n.removed = true;
    if (n.iattr !== null) this.withIattr.delete(n);
    if (n.type !== 'dir') return;
    const d = n as KDir;
    d.dropPending(); // never materialized: nothing to deactivate or drain
    for (const c of d.children.values()) this.deactivate(c);
  }

  /** Nodes of the subtree rooted at n that still have calls in progress. */
  busyNodes(n: KNode, out: KNode[] = []): KNode[] {
    if (n.active > 0) out.push(n);
    if (n.type === 'dir') for (const c of (n as KDir).children.values()) this.busyNodes(c, out);
    return out;
  }

  /** kernfs_find_and_get(dir, name) */
  child(dir: KDir, name: string): KNode | undefined {
    return dir.children.get(name);
  }

  /** Creates (or returns) the directories of a path below the root: "/sys/a/b". */
  mkdirp(path: string): KDir {
    const parts = components(path).slice(this.mountParts.length);
    let d = this.root;
    for (const c of parts) {
      const n = d.children.get(c);
      if (n === undefined) d = this.mkdir(d, c);
      else if (n.type === 'dir') d = n as KDir;
      else throw new Errno(E.ENOTDIR, path);
    }
    return d;
  }
}

/** Plain byte-wise order (what `LC_ALL=C ls` shows). */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
