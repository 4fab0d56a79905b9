import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { E, strerror, errnoName, errnoInfo, errnoByName, Errno, allErrnos, Prng } from '../../src/kernel/index.js';

test('errno numbers, names and strerror texts are Linux/glibc', () => {
  const cases: Array<[string, number, string]> = [
    ['EPERM', 1, 'Operation not permitted'],
    ['ENOENT', 2, 'No such file or directory'],
    ['EIO', 5, 'Input/output error'],
    ['EAGAIN', 11, 'Resource temporarily unavailable'],
    ['EACCES', 13, 'Permission denied'],
    ['EBUSY', 16, 'Device or resource busy'],
    ['EEXIST', 17, 'File exists'],
    ['ENODEV', 19, 'No such device'],
    ['EINVAL', 22, 'Invalid argument'],
    ['ENOSPC', 28, 'No space left on device'],
    ['ERANGE', 34, 'Numerical result out of range'],
    ['EOPNOTSUPP', 95, 'Operation not supported'],
    ['EUSERS', 87, 'Too many users'],
    ['EADDRINUSE', 98, 'Address already in use'],
    ['EADDRNOTAVAIL', 99, 'Cannot assign requested address'],
  ];
  for (const [name, n, text] of cases) {
    assert.equal(E[name], n, name);
    assert.equal(strerror(n), text);
    assert.equal(strerror(-n), text);
    assert.equal(errnoName(n), name);
    assert.equal(errnoByName(name)!.errno, n);
  }
  assert.equal(strerror(4242), 'Unknown error 4242');
  assert.equal(errnoName(4242), 'E4242');
  assert.equal(errnoByName('EWOULDBLOCK')!.errno, 11);
  assert.equal(errnoInfo(-22)!.name, 'EINVAL');
  const e = new Errno(-E.EBUSY);
  assert.equal(e.errno, 16);
  assert.equal(e.message, 'EBUSY (Device or resource busy)');
  const nums = allErrnos().map((x) => x.errno);
  assert.deepEqual(nums, [...nums].sort((a, b) => a - b));
  assert.equal(new Set(nums).size, nums.length);
});

test('the PRNG is deterministic per seed and stays in range (property)', () => {
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 1, max: 1_000_000 }), (seed, n) => {
      const a = new Prng(seed);
      const b = new Prng(seed);
      for (let i = 0; i < 20; i++) {
        const x = a.nextInt(n);
        assert.equal(x, b.nextInt(n));
        assert.ok(Number.isInteger(x) && x >= 0 && x < n);
        const f = a.nextFloat();
        b.nextFloat();
        assert.ok(f >= 0 && f < 1);
      }
    }),
  );
  assert.notEqual(new Prng(1).nextU32(), new Prng(2).nextU32());
  assert.equal(new Prng('abc').nextU32(), new Prng('abc').nextU32());
});

test('the PRNG is roughly uniform', () => {
  const p = new Prng(7);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 100_000; i++) counts[p.nextInt(10)]++;
  for (const c of counts) assert.ok(c > 9_500 && c < 10_500, String(counts));
});
