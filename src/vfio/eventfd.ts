// eventfd (fs/eventfd.c) as VFIO drivers and QEMU use it: a counter that eventfd_signal() adds
// to and that wakes every poller. Signals are counted (`signals`) so tests can assert exactly how
// often a driver signalled, and userspace reads (eventfd_read) consume the counter.
import { E, type KGen, type Kernel, type WaitQueue } from '../kernel/index.js';
import { KFile, current_files, type FileOps } from './file.js';

/** struct eventfd_ctx */
export class EventFdCtx {
  /** The counter (eventfd_read returns and clears it). */
  count = 0;
  /** Total eventfd_signal() calls ever made on it. */
  signals = 0;
  /** Kernel references (eventfd_ctx_fdget / eventfd_ctx_put) besides the file's own. */
  kref = 1;
  /** Wait queues of pollers (poll_wait): QEMU's main loop registers its own. */
  readonly pollers = new Set<WaitQueue>();
  /** Synchronous observers (tests): called at every signal with the new count. */
  readonly listeners: Array<(ctx: EventFdCtx) => void> = [];
  constructor(readonly name: string) {}
}

export const eventfd_fops: FileOps<KFile<EventFdCtx>> = Object.freeze({
  name: 'anon_inode:[eventfd]',
  *release(_k: Kernel, f: KFile<EventFdCtx>): KGen<void> {
    eventfd_ctx_put(f.private_data);
  },
});

/** eventfd(2): a new eventfd file; install it in a Files table to get a descriptor. */
export function eventfd_file(name = 'eventfd'): KFile<EventFdCtx> {
  return new KFile(eventfd_fops, new EventFdCtx(name));
}

/** Is f an eventfd file? */
export function is_eventfd(f: KFile): f is KFile<EventFdCtx> {
  return f.f_op === eventfd_fops;
}

/**
 * eventfd_ctx_fdget(fd): resolves fd in current->files. -EBADF if it is not an open
 * descriptor, -EINVAL if it is not an eventfd; otherwise a new reference on the context.
 */
export function eventfd_ctx_fdget(k: Kernel, fd: number): EventFdCtx | number {
  const files = current_files(k);
  const f = files?.get(fd) ?? null;
  if (!f) return -E.EBADF;
  if (!is_eventfd(f)) return -E.EINVAL;
  f.private_data.kref++;
  return f.private_data;
}

/** eventfd_ctx_put() */
export function eventfd_ctx_put(ctx: EventFdCtx): void {
  if (ctx.kref > 0) ctx.kref--;
}

/**
 * eventfd_signal(): adds 1 and wakes the pollers. A generator because waking is a scheduling
 * point in the simulation (the kernel's wake_up_locked_poll inside the ctx spinlock).
 */
export function* eventfd_signal(k: Kernel, ctx: EventFdCtx): KGen<void> {
  ctx.count++;
  ctx.signals++;
  for (const l of ctx.listeners) l(ctx);
  for (const wq of ctx.pollers) yield k.wake_up(wq);
}

/** read(2) on the eventfd without blocking: the counter (0 = would block) and reset it. */
export function eventfd_read(ctx: EventFdCtx): number {
  const n = ctx.count;
  ctx.count = 0;
  return n;
}
