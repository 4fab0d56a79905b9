// Userspace file descriptors as far as VFIO needs them: a per-process fd table (struct
// files_struct), reference-counted open files (struct file) whose last fput runs the release
// op, and `current->files` for kernel code that resolves fds (eventfd_ctx_fdget in SET_IRQS).
//
// A process (QEMU) owns one Files table; each of its tasks is bound to it with
// task_set_files() so that a driver's ioctl callback, running in that task, sees the caller's
// descriptors exactly as current->files does in Linux.
import { E, SideTable, type KGen, type Kernel, type Task } from '../kernel/index.js';

/** struct file_operations, the parts used. */
export interface FileOps<F extends KFile = KFile> {
  /** anon-inode / device name, for /proc-like listings and errors ("[vfio-device]"). */
  readonly name: string;
  /** ->release(): runs at the last fput. */
  release?(k: Kernel, file: F): KGen<void>;
  /** ->unlocked_ioctl(): 0/positive or a negative errno. Missing → -ENOTTY. */
  ioctl?(k: Kernel, file: F, cmd: number, arg: unknown): KGen<number>;
}

/** struct file */
export class KFile<P = unknown> {
  /** f_count */
  refs = 1;
  released = false;
  constructor(
    readonly f_op: FileOps<any>,
    public private_data: P,
  ) {}
}

/** get_file() */
export function get_file<F extends KFile>(f: F): F {
  f.refs++;
  return f;
}

/** fput(): the last reference runs ->release in the calling task. */
export function* fput(k: Kernel, f: KFile): KGen<void> {
  if (k.WARN_ON(f.refs <= 0, `fput on a released ${f.f_op.name} file`)) return;
  if (--f.refs > 0) return;
  f.released = true;
  if (f.f_op.release) yield* k.fn(`${f.f_op.name} release`, f.f_op.release(k, f));
}

const taskWork = new SideTable<Task, KFile[]>('taskWork');

/**
 * fput() from kernel code holding locks: like Linux (task_work), the release of the last
 * reference runs when the task returns to userspace, not under the caller's locks.
 */
export function fput_deferred(k: Kernel, f: KFile): void {
  if (k.WARN_ON(f.refs <= 0, `fput on a released ${f.f_op.name} file`)) return;
  if (f.refs > 1) {
    f.refs--;
    return;
  }
  const t = k.current;
  if (!t) {
    f.refs--;
    f.released = true;
    return;
  }
  let l = taskWork.get(t);
  if (!l) taskWork.set(t, (l = []));
  l.push(f);
}

/** task_work_run(): deferred fputs of the current task (syscall exit). */
export function* task_work_run(k: Kernel): KGen<void> {
  const t = k.current;
  const l = t ? taskWork.get(t) : undefined;
  if (!l) return;
  while (l.length) yield* fput(k, l.shift()!);
  taskWork.delete(t!);
}

/** struct files_struct: the fd table of one process. */
export class Files {
  private readonly fdt = new Map<number, KFile>();
  constructor(readonly owner = 'process') {}

  /** get_unused_fd_flags() + fd_install(): the lowest free descriptor (0-2 are stdio). */
  install(f: KFile): number {
    let fd = 3;
    while (this.fdt.has(fd)) fd++;
    this.fdt.set(fd, f);
    return fd;
  }

  /** fdget(): the file or null (EBADF). */
  get(fd: number): KFile | null {
    return this.fdt.get(fd) ?? null;
  }

  /** Removes the descriptor (close_fd); the caller fputs the file. */
  take(fd: number): KFile | null {
    const f = this.fdt.get(fd) ?? null;
    if (f) this.fdt.delete(fd);
    return f;
  }

  /** Open descriptors, ascending. */
  fds(): number[] {
    return [...this.fdt.keys()].sort((a, b) => a - b);
  }
}

const taskFiles = new SideTable<Task, Files>('taskFiles');

/** Binds a task to its process' fd table (what clone(CLONE_FILES) shares). */
export function task_set_files(t: Task, files: Files): void {
  taskFiles.set(t, files);
}

/** current->files; null in kernel threads. */
export function current_files(k: Kernel): Files | null {
  const t = k.current;
  return t ? (taskFiles.get(t) ?? null) : null;
}

/** ioctl(2) on an fd of files: -EBADF, -ENOTTY, or the file's answer. */
export function* sys_ioctl(k: Kernel, files: Files, fd: number, cmd: number, arg: unknown): KGen<number> {
  const f = files.get(fd);
  if (!f) return -E.EBADF;
  if (!f.f_op.ioctl) return -E.ENOTTY;
  get_file(f); // fdget across the call: a concurrent close cannot release it under us
  const r: number = yield* f.f_op.ioctl(k, f, cmd, arg);
  yield* fput(k, f);
  yield* task_work_run(k);
  return r;
}

/** close(2): -EBADF or 0; the release runs if this was the last reference. */
export function* sys_close(k: Kernel, files: Files, fd: number): KGen<number> {
  const f = files.take(fd);
  if (!f) return -E.EBADF;
  yield* fput(k, f);
  yield* task_work_run(k);
  return 0;
}
