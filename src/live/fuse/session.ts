// A FUSE file-system server in TypeScript, talking the kernel protocol directly over
// /dev/fuse (no libfuse, no native addon). The mount itself is done by mount(8) run
// as a child that inherits the /dev/fuse descriptor as fd 3
// (`mount -i -t fuse.apsim -o fd=3,rootmode=40000,...`), which needs root.
//
// Requests are read one at a time with fs.read() (a blocking read in libuv's thread
// pool), parsed synchronously, and dispatched to a FuseFilesystem whose methods may
// answer at once or with a Promise; the next read is issued as soon as the request is
// parsed, so slow requests (a store waiting for a lock) do not hold up others.
// Replies are written with writeSync (writes to /dev/fuse never block).
//
// The file system must never be accessed from this process' own thread: the event
// loop would wait on itself. Tests and benchmarks access it from child processes.
import * as fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { E } from '../../kernel/errno.js';
import * as A from './abi.js';

/** Attributes of a node as the kernel's struct fuse_attr needs them. */
export interface FuseAttr {
  readonly ino: number;
  /** st_mode including the file type. */
  readonly mode: number;
  readonly size: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
}

export interface FuseEntry {
  readonly nodeid: number;
  readonly attr: FuseAttr;
}

/** Who is asking (from fuse_in_header). */
export interface FuseCtx {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly unique: bigint;
}

export interface FuseDirEntry {
  readonly name: string;
  readonly ino: number;
  /** DT_DIR, DT_REG, DT_LNK */
  readonly type: number;
}

export interface SetattrIn {
  readonly valid: number;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface OpenOut {
  readonly fh: number;
  /** FOPEN_* flags; the session always adds FOPEN_DIRECT_IO for files. */
  readonly flags?: number;
}

/** A result or a negative errno, now or later. */
export type Res<T> = T | number | Promise<T | number>;

/**
 * The operations a file system implements. A negative number is an error (-errno);
 * write() returns the byte count (>= 0) or -errno.
 */
export interface FuseFilesystem {
  lookup(parent: number, name: string, ctx: FuseCtx): Res<FuseEntry>;
  /** The kernel dropped nlookup references to nodeid (FORGET, BATCH_FORGET). */
  forget(nodeid: number, nlookup: number): void;
  getattr(nodeid: number, ctx: FuseCtx): Res<FuseAttr>;
  setattr(nodeid: number, s: SetattrIn, ctx: FuseCtx): Res<FuseAttr>;
  readlink(nodeid: number, ctx: FuseCtx): Res<string>;
  open(nodeid: number, flags: number, ctx: FuseCtx): Res<OpenOut>;
  read(nodeid: number, fh: number, offset: number, size: number, ctx: FuseCtx): Res<Buffer>;
  write(nodeid: number, fh: number, offset: number, data: Buffer, ctx: FuseCtx): Res<number>;
  release(nodeid: number, fh: number): void;
  opendir(nodeid: number, ctx: FuseCtx): Res<OpenOut>;
  /** The whole listing without "." and ".."; the session adds them and pages by offset. */
  readdir(nodeid: number, fh: number, ctx: FuseCtx): Res<readonly FuseDirEntry[]>;
  releasedir(nodeid: number, fh: number): void;
  /** FUSE_INTERRUPT for a request still being answered (optional). */
  interrupt?(unique: bigint): void;
}

export interface MountOptions {
  /** Extra fuse mount options (besides fd, rootmode, user_id, group_id, allow_other, default_permissions). */
  readonly fsname?: string;
  readonly subtype?: string;
  /** Called once when the session ends (unmounted or the device was closed). */
  readonly onClosed?: (reason: string) => void;
  /** Called for unexpected errors inside a handler (the request gets EIO). */
  readonly onError?: (e: unknown, opcode: string) => void;
}

interface DirHandle {
  entries: FuseDirEntry[];
}

/** Counters for status and benchmarks. */
export interface FuseStats {
  requests: number;
  errors: number;
  inflight: number;
}

export class FuseSession {
  private fd = -1;
  private readonly buf = Buffer.allocUnsafe(A.READ_BUFFER);
  private closed = false;
  private reading = false;
  private stopReading = false;
  private readonly dirs = new Map<number, DirHandle>();
  private dirSeq = 1;
  readonly stats: FuseStats = { requests: 0, errors: 0, inflight: 0 };
  /** Negotiated protocol minor version. */
  protoMinor = 0;
  private closeWaiters: Array<() => void> = [];

  private constructor(
    readonly mountpoint: string,
    private readonly fsImpl: FuseFilesystem,
    private readonly opts: MountOptions,
  ) {}

  /**
   * Opens /dev/fuse, mounts it at mountpoint (which must exist) and starts serving.
   * Rejects with a readable message if the mount fails.
   */
  static async mount(mountpoint: string, fsImpl: FuseFilesystem, opts: MountOptions = {}): Promise<FuseSession> {
    const s = new FuseSession(mountpoint, fsImpl, opts);
    s.fd = fs.openSync('/dev/fuse', fs.constants.O_RDWR);
    const o = ['fd=3', 'rootmode=40000', 'user_id=0', 'group_id=0', 'allow_other', 'default_permissions', 'nodev', 'nosuid', 'noexec'];
    const type = `fuse.${opts.subtype ?? 'apsim'}`;
    try {
      await runMount(['-i', '-t', type, '-o', o.join(','), opts.fsname ?? 'apsim', mountpoint], s.fd);
    } catch (e) {
      fs.closeSync(s.fd);
      s.fd = -1;
      throw e;
    }
    s.readNext();
    return s;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves when the session has ended. */
  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => this.closeWaiters.push(r));
  }

  /**
   * Unmounts (umount, then a lazy umount if the mount is busy) and waits until the
   * kernel has closed the connection. Safe to call more than once.
   */
  async unmount(): Promise<void> {
    if (this.closed) return;
    // umount(8) stats the mount point, which is answered by this very event loop:
    // it must run asynchronously.
    if (await runUmount([this.mountpoint])) {
      // The pending read returns ENODEV once the connection is gone.
      await Promise.race([this.whenClosed(), sleep(2000)]);
      this.finish('unmounted');
      return;
    }
    // Busy (a process has a file open or its cwd there): detach lazily. The kernel
    // keeps the connection while the mount is still referenced, so the read pending
    // in the thread pool would never return and Node could not exit (it joins its
    // pool threads). Wake it with a request of our own on a directory handle opened
    // before the detach, stop reading, and close /dev/fuse, which aborts the
    // connection: the remaining users get ENOTCONN, as after a real daemon's exit.
    const dirfd = await fs.promises.open(this.mountpoint, 'r').catch(() => null);
    await runUmount(['-l', this.mountpoint]);
    this.stopReading = true;
    if (this.reading && dirfd) {
      dirfd.stat().catch(() => {});
      const t0 = Date.now();
      while (this.reading && Date.now() - t0 < 2000) await sleep(5);
    }
    this.finish('unmounted (lazily: the mount was busy)');
    await dirfd?.close().catch(() => {});
  }

  /** Kernel mount id of this mount (from mountinfo), for the exit watchdog. */
  get mountId(): number | null {
    return mountAt(this.mountpoint)?.id ?? null;
  }

  private finish(reason: string): void {
    if (this.fd >= 0 && !this.reading) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already closed */
      }
      this.fd = -1;
    }
    if (this.closed && this.closeWaiters.length === 0) return;
    const first = !this.closed;
    this.closed = true;
    const w = this.closeWaiters;
    this.closeWaiters = [];
    for (const f of w) f();
    if (first) this.opts.onClosed?.(reason);
  }

  // ------------------------------------------------------------ the request loop

  private readNext(): void {
    if (this.closed || this.fd < 0) return;
    this.reading = true;
    fs.read(this.fd, this.buf, 0, this.buf.length, null, (err, n) => {
      this.reading = false;
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EINTR' || code === 'EAGAIN' || code === 'ENOENT') return this.readNext();
        // ENODEV: unmounted; anything else: the connection is unusable.
        this.finish(code === 'ENODEV' ? 'unmounted' : `read /dev/fuse: ${err.message}`);
        return;
      }
      if (n === 0) {
        this.finish('end of /dev/fuse');
        return;
      }
      let goOn = true;
      try {
        goOn = this.dispatch(this.buf, n);
      } catch (e) {
        this.opts.onError?.(e, 'dispatch');
      }
      if (!goOn) this.finish('destroyed');
      else if (this.stopReading) this.finish('unmounted');
      else this.readNext();
    });
  }

  /** Parses one request (copying what outlives the buffer) and starts answering it. */
  private dispatch(b: Buffer, n: number): boolean {
    const len = b.readUInt32LE(0);
    const opcode = b.readUInt32LE(4);
    const unique = b.readBigUInt64LE(8);
    const nodeid = Number(b.readBigUInt64LE(16));
    const ctx: FuseCtx = { uid: b.readUInt32LE(24), gid: b.readUInt32LE(28), pid: b.readUInt32LE(32), unique };
    const p = A.IN_HEADER; // payload offset
    const end = Math.min(len, n);
    this.stats.requests++;
    const f = this.fsImpl;
    switch (opcode) {
      case A.Opcode.INIT: {
        const major = b.readUInt32LE(p);
        const minor = b.readUInt32LE(p + 4);
        const maxReadahead = b.readUInt32LE(p + 8);
        const kflags = b.readUInt32LE(p + 12);
        if (major !== A.FUSE_KERNEL_VERSION) {
          // Tell the kernel our major; it will retry or give up.
          const o = Buffer.alloc(8);
          o.writeUInt32LE(A.FUSE_KERNEL_VERSION, 0);
          this.reply(unique, 0, o);
          return true;
        }
        this.protoMinor = Math.min(minor, A.FUSE_KERNEL_MINOR_VERSION);
        const want = A.FUSE_ASYNC_READ | A.FUSE_ATOMIC_O_TRUNC | A.FUSE_BIG_WRITES | A.FUSE_PARALLEL_DIROPS | A.FUSE_MAX_PAGES;
        const o = Buffer.alloc(A.INIT_OUT);
        o.writeUInt32LE(A.FUSE_KERNEL_VERSION, 0);
        o.writeUInt32LE(this.protoMinor, 4);
        o.writeUInt32LE(maxReadahead, 8);
        o.writeUInt32LE((want & kflags) >>> 0, 12);
        o.writeUInt16LE(16, 16); // max_background
        o.writeUInt16LE(12, 18); // congestion_threshold
        o.writeUInt32LE(A.MAX_WRITE, 20);
        o.writeUInt32LE(1, 24); // time_gran
        o.writeUInt16LE(A.MAX_PAGES, 28);
        this.reply(unique, 0, o);
        return true;
      }
      case A.Opcode.DESTROY:
        this.reply(unique, 0);
        return false;
      case A.Opcode.FORGET:
        f.forget(nodeid, Number(b.readBigUInt64LE(p)));
        return true; // no reply
      case A.Opcode.BATCH_FORGET: {
        const count = b.readUInt32LE(p);
        for (let i = 0; i < count; i++) {
          const o = p + 8 + i * 16;
          if (o + 16 > end) break;
          f.forget(Number(b.readBigUInt64LE(o)), Number(b.readBigUInt64LE(o + 8)));
        }
        return true; // no reply
      }
      case A.Opcode.INTERRUPT:
        f.interrupt?.(b.readBigUInt64LE(p));
        return true; // no reply
      case A.Opcode.LOOKUP: {
        const name = cstr(b, p, end);
        this.answer(unique, 'LOOKUP', () => f.lookup(nodeid, name, ctx), (e) => entryOut(e));
        return true;
      }
      case A.Opcode.GETATTR:
        this.answer(unique, 'GETATTR', () => f.getattr(nodeid, ctx), attrOut);
        return true;
      case A.Opcode.SETATTR: {
        const s: SetattrIn = {
          valid: b.readUInt32LE(p),
          size: Number(b.readBigUInt64LE(p + 16)),
          mode: b.readUInt32LE(p + 68),
          uid: b.readUInt32LE(p + 76),
          gid: b.readUInt32LE(p + 80),
        };
        this.answer(unique, 'SETATTR', () => f.setattr(nodeid, s, ctx), attrOut);
        return true;
      }
      case A.Opcode.READLINK:
        this.answer(unique, 'READLINK', () => f.readlink(nodeid, ctx), (t) => Buffer.from(t, 'utf8'));
        return true;
      case A.Opcode.OPEN: {
        const flags = b.readUInt32LE(p);
        this.answer(unique, 'OPEN', () => f.open(nodeid, flags, ctx), (o) => openOut(o.fh, (o.flags ?? 0) | A.FOPEN_DIRECT_IO));
        return true;
      }
      case A.Opcode.READ: {
        const fh = Number(b.readBigUInt64LE(p));
        const off = Number(b.readBigUInt64LE(p + 8));
        const size = b.readUInt32LE(p + 16);
        this.answer(unique, 'READ', () => f.read(nodeid, fh, off, size, ctx), (d) => (d.length > size ? d.subarray(0, size) : d));
        return true;
      }
      case A.Opcode.WRITE: {
        const fh = Number(b.readBigUInt64LE(p));
        const off = Number(b.readBigUInt64LE(p + 8));
        const size = b.readUInt32LE(p + 16);
        const dataOff = p + (this.protoMinor < 9 ? 24 : 40);
        const data = Buffer.from(b.subarray(dataOff, Math.min(dataOff + size, end)));
        this.answer(unique, 'WRITE', () => f.write(nodeid, fh, off, data, ctx), (cnt) => {
          const o = Buffer.alloc(8);
          o.writeUInt32LE(cnt, 0);
          return o;
        });
        return true;
      }
      case A.Opcode.FLUSH:
      case A.Opcode.FSYNC:
      case A.Opcode.FSYNCDIR:
        this.reply(unique, 0);
        return true;
      case A.Opcode.RELEASE:
        f.release(nodeid, Number(b.readBigUInt64LE(p)));
        this.reply(unique, 0);
        return true;
      case A.Opcode.OPENDIR:
        // Directory handles are the session's own (listings are kept per handle).
        this.answer(unique, 'OPENDIR', () => f.opendir(nodeid, ctx), () => openOut(this.dirSeq++, 0));
        return true;
      case A.Opcode.READDIR: {
        const fh = Number(b.readBigUInt64LE(p));
        const off = Number(b.readBigUInt64LE(p + 8));
        const size = b.readUInt32LE(p + 16);
        this.answer(unique, 'READDIR', () => this.readdir(nodeid, fh, off, ctx), (ents) => packDirents(ents, off, size));
        return true;
      }
      case A.Opcode.RELEASEDIR: {
        const fh = Number(b.readBigUInt64LE(p));
        this.dirs.delete(fh);
        f.releasedir(nodeid, fh);
        this.reply(unique, 0);
        return true;
      }
      case A.Opcode.STATFS: {
        const o = Buffer.alloc(A.STATFS_OUT);
        o.writeUInt32LE(4096, 40); // bsize
        o.writeUInt32LE(255, 44); // namelen
        o.writeUInt32LE(4096, 48); // frsize
        this.reply(unique, 0, o);
        return true;
      }
      case A.Opcode.ACCESS:
        // default_permissions: the kernel checks modes itself and does not send this.
        this.reply(unique, 0);
        return true;
      case A.Opcode.GETXATTR:
        // sysfs has no extended attributes in the user/security namespaces we model.
        this.reply(unique, -E.ENODATA);
        return true;
      case A.Opcode.LISTXATTR: {
        // An empty list: size query answers 0, a buffer gets 0 bytes.
        const size = b.readUInt32LE(p);
        if (size === 0) {
          const o = Buffer.alloc(8);
          this.reply(unique, 0, o);
        } else this.reply(unique, 0, Buffer.alloc(0));
        return true;
      }
      case A.Opcode.SETXATTR:
      case A.Opcode.REMOVEXATTR:
        this.reply(unique, -E.EOPNOTSUPP);
        return true;
      case A.Opcode.CREATE:
        // kernfs directories have no ->create: open(O_CREAT) of a new name is EACCES.
        this.reply(unique, -E.EACCES);
        return true;
      case A.Opcode.MKNOD:
      case A.Opcode.MKDIR:
      case A.Opcode.UNLINK:
      case A.Opcode.RMDIR:
      case A.Opcode.RENAME:
      case A.Opcode.RENAME2:
      case A.Opcode.LINK:
      case A.Opcode.SYMLINK:
      case A.Opcode.TMPFILE:
        this.reply(unique, -E.EPERM);
        return true;
      default:
        this.reply(unique, -E.ENOSYS);
        return true;
    }
  }

  private readdir(nodeid: number, fh: number, off: number, ctx: FuseCtx): Res<readonly FuseDirEntry[]> {
    // The listing is taken once per open directory (at offset 0), so offsets stay stable.
    const h = this.dirs.get(fh);
    if (h && off > 0) return h.entries;
    const r = this.fsImpl.readdir(nodeid, fh, ctx);
    const keep = (v: readonly FuseDirEntry[] | number): readonly FuseDirEntry[] | number => {
      if (typeof v === 'number') return v;
      const entries = [{ name: '.', ino: nodeid, type: A.DT_DIR }, { name: '..', ino: 1, type: A.DT_DIR }, ...v];
      this.dirs.set(fh, { entries });
      return entries;
    };
    return r instanceof Promise ? r.then(keep) : keep(r);
  }

  /** Runs a handler and replies with its encoded result or its errno. */
  private answer<T>(unique: bigint, what: string, call: () => Res<T>, encode: (v: T) => Buffer): void {
    let r: Res<T>;
    try {
      r = call();
    } catch (e) {
      this.fail(unique, what, e);
      return;
    }
    if (r instanceof Promise) {
      this.stats.inflight++;
      r.then(
        (v) => {
          this.stats.inflight--;
          this.finishAnswer(unique, what, v, encode);
        },
        (e: unknown) => {
          this.stats.inflight--;
          this.fail(unique, what, e);
        },
      );
    } else this.finishAnswer(unique, what, r, encode);
  }

  private finishAnswer<T>(unique: bigint, what: string, v: T | number, encode: (v: T) => Buffer): void {
    if (typeof v === 'number' && v < 0) {
      this.stats.errors++;
      this.reply(unique, v);
      return;
    }
    let out: Buffer;
    try {
      out = encode(v as T);
    } catch (e) {
      this.fail(unique, what, e);
      return;
    }
    this.reply(unique, 0, out);
  }

  private fail(unique: bigint, what: string, e: unknown): void {
    this.stats.errors++;
    this.opts.onError?.(e, what);
    this.reply(unique, -E.EIO);
  }

  /** Writes fuse_out_header + payload. error is 0 or -errno. */
  private reply(unique: bigint, error: number, payload?: Buffer): void {
    if (this.fd < 0) return;
    const plen = error === 0 && payload ? payload.length : 0;
    const out = Buffer.allocUnsafe(A.OUT_HEADER + plen);
    out.writeUInt32LE(A.OUT_HEADER + plen, 0);
    out.writeInt32LE(error, 4);
    out.writeBigUInt64LE(unique, 8);
    if (plen) payload!.copy(out, A.OUT_HEADER);
    try {
      fs.writeSync(this.fd, out);
    } catch (e) {
      // ENOENT: the request was interrupted/aborted meanwhile; ENODEV: unmounted.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENODEV') this.opts.onError?.(e, 'reply');
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

// ------------------------------------------------------------ encoders

function cstr(b: Buffer, start: number, end: number): string {
  let z = b.indexOf(0, start);
  if (z < 0 || z > end) z = end;
  return b.toString('utf8', start, z);
}

function writeAttr(o: Buffer, at: number, a: FuseAttr): void {
  o.writeBigUInt64LE(BigInt(a.ino), at);
  o.writeBigUInt64LE(BigInt(a.size), at + 8);
  o.writeBigUInt64LE(BigInt(Math.ceil(a.size / 512)), at + 16); // blocks
  const t = BigInt(START_SEC);
  o.writeBigUInt64LE(t, at + 24); // atime
  o.writeBigUInt64LE(t, at + 32); // mtime
  o.writeBigUInt64LE(t, at + 40); // ctime
  o.writeUInt32LE(0, at + 48);
  o.writeUInt32LE(0, at + 52);
  o.writeUInt32LE(0, at + 56);
  o.writeUInt32LE(a.mode, at + 60);
  o.writeUInt32LE(a.nlink, at + 64);
  o.writeUInt32LE(a.uid, at + 68);
  o.writeUInt32LE(a.gid, at + 72);
  o.writeUInt32LE(0, at + 76); // rdev
  o.writeUInt32LE(4096, at + 80); // blksize
  o.writeUInt32LE(0, at + 84); // flags
}

/** Inode times: when this process started (kernfs stamps inodes at creation). */
const START_SEC = Math.floor(Date.now() / 1000);

function entryOut(e: FuseEntry): Buffer {
  const o = Buffer.alloc(A.ENTRY_OUT);
  o.writeBigUInt64LE(BigInt(e.nodeid), 0);
  // generation 0; entry_valid = attr_valid = 0: every walk revalidates, like sysfs'
  // tree which changes under the caller.
  writeAttr(o, 40, e.attr);
  return o;
}

function attrOut(a: FuseAttr): Buffer {
  const o = Buffer.alloc(A.ATTR_OUT);
  writeAttr(o, 16, a);
  return o;
}

function openOut(fh: number, flags: number): Buffer {
  const o = Buffer.alloc(16);
  o.writeBigUInt64LE(BigInt(fh), 0);
  o.writeUInt32LE(flags, 8);
  return o;
}

/** Packs entries from index `off` on into at most size bytes; each entry's off is its index + 1. */
function packDirents(ents: readonly FuseDirEntry[], off: number, size: number): Buffer {
  const parts: Buffer[] = [];
  let used = 0;
  for (let i = off; i < ents.length; i++) {
    const e = ents[i]!;
    const name = Buffer.from(e.name, 'utf8');
    const rec = (A.DIRENT_NAME + name.length + 7) & ~7;
    if (used + rec > size) break;
    const d = Buffer.alloc(rec);
    d.writeBigUInt64LE(BigInt(e.ino), 0);
    d.writeBigUInt64LE(BigInt(i + 1), 8);
    d.writeUInt32LE(name.length, 16);
    d.writeUInt32LE(e.type, 20);
    name.copy(d, A.DIRENT_NAME);
    parts.push(d);
    used += rec;
  }
  return Buffer.concat(parts, used);
}

// ------------------------------------------------------------ mount helpers

function runMount(args: string[], fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('mount', args, { stdio: ['ignore', 'pipe', 'pipe', fd] });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    c.stdout!.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', (e) => reject(new Error(`cannot run mount(8): ${e.message}`)));
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`mount failed (exit ${code}): ${err.trim() || 'no message'}`))));
  });
}

function runUmount(args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn('umount', args, { stdio: 'ignore' });
    c.on('error', () => resolve(false));
    c.on('close', (code) => resolve(code === 0));
  });
}

/**
 * Unmounts a mount whose server is gone (a stale mount after a crash: every access
 * fails with ENOTCONN). Never call it for a mount served by this process.
 */
export function unmountStaleSync(mountpoint: string): boolean {
  const r = spawnSync('umount', [mountpoint], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0) return true;
  const l = spawnSync('umount', ['-l', mountpoint], { encoding: 'utf8', timeout: 10_000 });
  return l.status === 0;
}

/**
 * Starts a detached watchdog that, once process `pid` is gone (exit, crash, kill -9),
 * lazily unmounts mountpoint if the mount with id `mountId` is still there. The
 * kernel aborts the FUSE connection when the server dies, so the unmount cannot hang.
 */
export function startUnmountWatchdog(pid: number, mountpoint: string, mountId: number): void {
  const script =
    `while kill -0 ${pid} 2>/dev/null; do sleep 0.2; done; ` +
    `if awk -v id=${mountId} '$1==id{f=1} END{exit !f}' /proc/self/mountinfo; then umount -l "$1"; fi`;
  const c = spawn('sh', ['-c', script, 'apsim-unmount-watchdog', mountpoint], { detached: true, stdio: 'ignore' });
  c.unref();
}

/** A mount from /proc/self/mountinfo. */
export interface MountInfo {
  readonly id: number;
  readonly mountpoint: string;
  readonly fstype: string;
  readonly source: string;
}

/** The mount at exactly path (the last one, i.e. the visible one), if any. */
export function mountAt(path: string): MountInfo | null {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return null;
  }
  let found: MountInfo | null = null;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const mp = unescapeMount(f[4] ?? '');
    if (mp !== path) continue;
    const g = post.split(' ');
    found = { id: Number(f[0]), mountpoint: mp, fstype: g[0] ?? '', source: unescapeMount(g[1] ?? '') };
  }
  return found;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
