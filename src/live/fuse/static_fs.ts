// A trivial FUSE file system over a fixed tree: directories and files whose reads
// return fixed text and whose writes are accepted and dropped. The benchmark mounts
// it as the baseline for the sysfs mount (same FUSE code, no kernel behind it), and
// the FUSE tests use it to check the protocol layer on its own.
import { E } from '../../kernel/errno.js';
import { DT_DIR, DT_REG, FUSE_ROOT_ID, O_ACCMODE, O_WRONLY } from './abi.js';
import type { FuseAttr, FuseDirEntry, FuseEntry, FuseFilesystem, OpenOut, SetattrIn } from './session.js';

interface SNode {
  readonly id: number;
  readonly name: string;
  readonly dir: boolean;
  readonly mode: number;
  content: string;
  readonly children: Map<string, SNode>;
  writes: number;
}

export class StaticFs implements FuseFilesystem {
  private readonly nodes = new Map<number, SNode>();
  private nextId = FUSE_ROOT_ID;

  constructor() {
    this.mk('', true, 0o755);
  }

  private mk(name: string, dir: boolean, mode: number): SNode {
    const n: SNode = { id: this.nextId++, name, dir, mode, content: '', children: new Map(), writes: 0 };
    this.nodes.set(n.id, n);
    return n;
  }

  /** Adds a file at path ("a/b/c"), creating directories; returns nothing. */
  addFile(path: string, content = '', mode = 0o644): void {
    const parts = path.split('/').filter(Boolean);
    let d = this.nodes.get(FUSE_ROOT_ID)!;
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      let c = d.children.get(parts[i]!);
      if (!c) {
        c = this.mk(parts[i]!, !last, last ? mode : 0o755);
        d.children.set(c.name, c);
      }
      if (last) c.content = content;
      d = c;
    }
  }

  /** Total writes accepted (for the benchmark's sanity check). */
  get writeCount(): number {
    let n = 0;
    for (const x of this.nodes.values()) n += x.writes;
    return n;
  }

  private attr(n: SNode): FuseAttr {
    return { ino: n.id, mode: (n.dir ? 0o040000 : 0o100000) | n.mode, size: n.dir ? 0 : 4096, nlink: n.dir ? 2 : 1, uid: 0, gid: 0 };
  }

  lookup(parent: number, name: string): FuseEntry | number {
    const c = this.nodes.get(parent)?.children.get(name);
    return c ? { nodeid: c.id, attr: this.attr(c) } : -E.ENOENT;
  }
  forget(): void {}
  getattr(nodeid: number): FuseAttr | number {
    const n = this.nodes.get(nodeid);
    return n ? this.attr(n) : -E.ENOENT;
  }
  setattr(nodeid: number, _s: SetattrIn): FuseAttr | number {
    return this.getattr(nodeid);
  }
  readlink(): number {
    return -E.EINVAL;
  }
  open(nodeid: number, flags: number): OpenOut | number {
    const n = this.nodes.get(nodeid);
    if (!n) return -E.ENOENT;
    return { fh: (flags & O_ACCMODE) === O_WRONLY ? 1 : 0 };
  }
  read(nodeid: number, _fh: number, offset: number, size: number): Buffer | number {
    const n = this.nodes.get(nodeid);
    if (!n) return -E.ENOENT;
    return Buffer.from(n.content, 'utf8').subarray(offset, offset + size);
  }
  write(nodeid: number, _fh: number, _offset: number, data: Buffer): number {
    const n = this.nodes.get(nodeid);
    if (!n) return -E.ENOENT;
    n.writes++;
    return data.length;
  }
  release(): void {}
  opendir(nodeid: number): OpenOut | number {
    return this.nodes.get(nodeid)?.dir ? { fh: 0 } : -E.ENOTDIR;
  }
  readdir(nodeid: number): FuseDirEntry[] | number {
    const n = this.nodes.get(nodeid);
    if (!n) return -E.ENOENT;
    return [...n.children.values()].map((c) => ({ name: c.name, ino: c.id, type: c.dir ? DT_DIR : DT_REG }));
  }
  releasedir(): void {}
}
