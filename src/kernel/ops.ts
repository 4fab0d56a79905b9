// Operation kinds. A task announces its next operation by calling a Kernel method
// (k.mutex_lock(m) ...) which records the op on the task and returns OP; the task
// then `yield`s it. The scheduler executes the op when it picks the task, so every
// op is a scheduling point and the scheduler always knows what each task will do
// next (which tasks are enabled, what DPOR's dependency relation needs).

export const enum Op {
  NONE = 0,
  START, // first step of a new task
  SCHED, // sched_point: unlocked shared access
  LOCK,
  TRYLOCK,
  UNLOCK,
  DOWN_READ,
  DOWN_WRITE,
  DOWN_READ_TRYLOCK,
  DOWN_WRITE_TRYLOCK,
  UP_READ,
  UP_WRITE,
  WAIT_COMPLETION,
  COMPLETE,
  COMPLETE_ALL,
  WAIT_EVENT,
  WAKE_UP,
  SLEEP,
  JOIN,
  KREF_GET,
  KREF_GET_UNLESS_ZERO,
  KREF_PUT,
  ATOMIC,
  FREE,
  QUEUE_WORK,
  FLUSH_WORK,
  CANCEL_WORK,
  WAIT_WORK_IDLE,
  FLUSH_WORKQUEUE,
  /** Not a step: a call the scheduler runs as a frame of its own (Kernel.call). */
  CALL,
}

/** mutex_lock(m, READS): a critical section that only reads what m protects (see Kernel.mutex_lock). */
export const READS: unique symbol = Symbol('read-section');

/** The token every op method returns; tasks must `yield` it. */
export const OP: unique symbol = Symbol('kernel-op');
export type OpToken = typeof OP;

/** The generator type of every task body and every function that may schedule. */
export type KGen<T = void> = Generator<OpToken, T, any>;

const NAMES: Record<number, string> = {
  [Op.NONE]: 'none',
  [Op.START]: 'start',
  [Op.SCHED]: 'sched_point',
  [Op.LOCK]: 'mutex_lock',
  [Op.TRYLOCK]: 'mutex_trylock',
  [Op.UNLOCK]: 'mutex_unlock',
  [Op.DOWN_READ]: 'down_read',
  [Op.DOWN_WRITE]: 'down_write',
  [Op.DOWN_READ_TRYLOCK]: 'down_read_trylock',
  [Op.DOWN_WRITE_TRYLOCK]: 'down_write_trylock',
  [Op.UP_READ]: 'up_read',
  [Op.UP_WRITE]: 'up_write',
  [Op.WAIT_COMPLETION]: 'wait_for_completion',
  [Op.COMPLETE]: 'complete',
  [Op.COMPLETE_ALL]: 'complete_all',
  [Op.WAIT_EVENT]: 'wait_event',
  [Op.WAKE_UP]: 'wake_up',
  [Op.SLEEP]: 'msleep',
  [Op.JOIN]: 'kthread_stop',
  [Op.KREF_GET]: 'kref_get',
  [Op.KREF_GET_UNLESS_ZERO]: 'kref_get_unless_zero',
  [Op.KREF_PUT]: 'kref_put',
  [Op.ATOMIC]: 'atomic',
  [Op.FREE]: 'kfree',
  [Op.QUEUE_WORK]: 'queue_work',
  [Op.FLUSH_WORK]: 'flush_work',
  [Op.CANCEL_WORK]: 'cancel_work_sync',
  [Op.WAIT_WORK_IDLE]: 'cancel_work_sync',
  [Op.FLUSH_WORKQUEUE]: 'flush_workqueue',
  [Op.CALL]: 'call',
};

export function opName(op: Op): string {
  return NAMES[op] ?? `op${op}`;
}
