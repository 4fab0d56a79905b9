import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, RoundRobinStrategy, type KGen } from '../../src/kernel/index.js';

// Deadlock reports for every kind of wait the wait-for graph follows (lockdep off, so
// the deadlock itself is the first report): rwsem readers as owners, a reader queued
// behind a waiting writer, kthread_stop, flush_work, flush_workqueue.
function kernel(): Kernel {
  return new Kernel({ strategy: new RoundRobinStrategy(), lockdep: false, stopOnBug: true });
}

function deadlockText(k: Kernel): string {
  assert.equal(k.run(), 'deadlock');
  assert.equal(k.bugs.length, 1);
  assert.equal(k.bugs[0]!.kind, 'deadlock');
  return k.bugs[0]!.text;
}

test('deadlock report: rwsem writer waits for a reader', () => {
  const k = kernel();
  const S = k.init_rwsem('&s->sem');
  const M = k.mutex_init('&m->lock');
  k.spawn('reader', (function* (): KGen {
    yield k.down_read(S);
    yield k.sched_point('x');
    yield k.mutex_lock(M);
  })());
  k.spawn('writer', (function* (): KGen {
    yield k.mutex_lock(M);
    yield k.sched_point('y');
    yield k.down_write(S);
  })());
  assert.deepEqual(deadlockText(k).split('\n'), [
    'INFO: task deadlock detected: no task can make progress',
    'Wait-for cycle:',
    '  reader/100 waits in mutex_lock(&m->lock), held by writer/101',
    '  writer/101 waits in down_write(&s->sem), held for read by reader/100',
    'INFO: task reader:100 blocked in mutex_lock(&m->lock) (held by writer/101)',
    '      ops: reader',
    '      1 lock held by reader/100:',
    '       #0: ffff888100000000 (&s->sem){+.+.}-{3:3}, at: reader',
    'INFO: task writer:101 blocked in down_write(&s->sem) (held for read by reader/100)',
    '      ops: writer',
    '      1 lock held by writer/101:',
    '       #0: ffff888100000040 (&m->lock){+.+.}-{3:3}, at: writer',
    'Kernel: 6.12.0-apsim',
  ]);
});

test('deadlock report: reader queued behind a waiting writer', () => {
  const k = kernel();
  const S = k.init_rwsem('&s->sem');
  const M = k.mutex_init('&m->lock');
  k.spawn('r1', (function* (): KGen {
    yield k.down_read(S);
    yield k.sched_point('a');
    yield k.sched_point('a2');
    yield k.mutex_lock(M);
  })());
  k.spawn('w', (function* (): KGen {
    yield k.sched_point('b');
    yield k.down_write(S);
  })());
  k.spawn('r2', (function* (): KGen {
    yield k.mutex_lock(M);
    yield k.sched_point('c');
    yield k.sched_point('c2');
    yield k.down_read(S); // writer preference: behind w, although r1 only reads
  })());
  assert.deepEqual(deadlockText(k).split('\n'), [
    'INFO: task deadlock detected: no task can make progress',
    'Wait-for cycle:',
    '  r1/100 waits in mutex_lock(&m->lock), held by r2/102',
    '  r2/102 waits in down_read(&s->sem), queued behind w/101',
    '  w/101 waits in down_write(&s->sem), held for read by r1/100',
    'INFO: task r1:100 blocked in mutex_lock(&m->lock) (held by r2/102)',
    '      ops: r1',
    '      1 lock held by r1/100:',
    '       #0: ffff888100000000 (&s->sem){+.+.}-{3:3}, at: r1',
    'INFO: task w:101 blocked in down_write(&s->sem) (held for read by r1/100)',
    '      ops: w',
    '      no locks held by w/101.',
    'INFO: task r2:102 blocked in down_read(&s->sem) (queued behind w/101)',
    '      ops: r2',
    '      1 lock held by r2/102:',
    '       #0: ffff888100000040 (&m->lock){+.+.}-{3:3}, at: r2',
    'Kernel: 6.12.0-apsim',
  ]);
});

test('deadlock report: kthread_stop', () => {
  const k = kernel();
  const M = k.mutex_init('&m->lock');
  const th = k.spawn('worker-thread', (function* (): KGen {
    yield k.sched_point('t');
    yield k.mutex_lock(M);
    yield k.mutex_unlock(M);
  })());
  k.spawn('stopper', (function* (): KGen {
    yield k.mutex_lock(M);
    yield k.join(th);
    yield k.mutex_unlock(M);
  })());
  assert.deepEqual(deadlockText(k).split('\n'), [
    'INFO: task deadlock detected: no task can make progress',
    'Wait-for cycle:',
    '  worker-thread/100 waits in mutex_lock(&m->lock), held by stopper/101',
    '  stopper/101 waits in kthread_stop(worker-thread), waiting for exit of worker-thread/100',
    'INFO: task worker-thread:100 blocked in mutex_lock(&m->lock) (held by stopper/101)',
    '      ops: worker-thread',
    '      no locks held by worker-thread/100.',
    'INFO: task stopper:101 blocked in kthread_stop(worker-thread) (waiting for exit of worker-thread/100)',
    '      ops: stopper',
    '      1 lock held by stopper/101:',
    '       #0: ffff888100000000 (&m->lock){+.+.}-{3:3}, at: stopper',
    'Kernel: 6.12.0-apsim',
  ]);
});

test('deadlock report: flush_work', () => {
  const k = kernel();
  const M = k.mutex_init('&dev->lock');
  const w = k.INIT_WORK('dev_work', function* (): KGen {
    yield k.mutex_lock(M);
    yield k.mutex_unlock(M);
  });
  k.spawn('remover', (function* (): KGen {
    yield k.mutex_lock(M);
    yield k.schedule_work(w);
    yield k.sched_point('s');
    yield k.sched_point('s2');
    yield k.flush_work(w);
    yield k.mutex_unlock(M);
  })());
  assert.deepEqual(deadlockText(k).split('\n'), [
    'INFO: task deadlock detected: no task can make progress',
    'Wait-for cycle:',
    '  remover/100 waits in flush_work(dev_work), running in kworker/0:0/101',
    '  kworker/0:0/101 waits in mutex_lock(&dev->lock) in dev_work, held by remover/100',
    'INFO: task remover:100 blocked in flush_work(dev_work) (running in kworker/0:0/101)',
    '      ops: remover',
    '      1 lock held by remover/100:',
    '       #0: ffff888100000000 (&dev->lock){+.+.}-{3:3}, at: remover',
    'INFO: task kworker/0:0:101 blocked in mutex_lock(&dev->lock) (held by remover/100)',
    '      ops: dev_work',
    '      1 lock held by kworker/0:0/101:',
    '       #0: ffff888100000040 ((work_completion)(&dev_work)){+.+.}-{0:0}, at: process_one_work',
    'Kernel: 6.12.0-apsim',
  ]);
});

test('deadlock report: flush_workqueue', () => {
  const k = kernel();
  const M = k.mutex_init('&dev->lock');
  const wq = k.alloc_workqueue('devwq');
  const w = k.INIT_WORK('dev_work', function* (): KGen {
    yield k.mutex_lock(M);
    yield k.mutex_unlock(M);
  });
  k.spawn('remover', (function* (): KGen {
    yield k.mutex_lock(M);
    yield k.queue_work(wq, w);
    yield k.sched_point('s');
    yield k.sched_point('s2');
    yield k.flush_workqueue(wq);
    yield k.mutex_unlock(M);
  })());
  assert.deepEqual(deadlockText(k).split('\n'), [
    'INFO: task deadlock detected: no task can make progress',
    'Wait-for cycle:',
    '  remover/100 waits in flush_workqueue(devwq), running in kworker/0:0/101',
    '  kworker/0:0/101 waits in mutex_lock(&dev->lock) in dev_work, held by remover/100',
    'INFO: task remover:100 blocked in flush_workqueue(devwq) (running in kworker/0:0/101)',
    '      ops: remover',
    '      1 lock held by remover/100:',
    '       #0: ffff888100000000 (&dev->lock){+.+.}-{3:3}, at: remover',
    'INFO: task kworker/0:0:101 blocked in mutex_lock(&dev->lock) (held by remover/100)',
    '      ops: dev_work',
    '      1 lock held by kworker/0:0/101:',
    '       #0: ffff888100000080 ((work_completion)(&dev_work)){+.+.}-{0:0}, at: process_one_work',
    'Kernel: 6.12.0-apsim',
  ]);
});
