// npm run bench -- live [iterations]
// Latency of one `echo +0 > aqmask`-style write (open O_WRONLY|O_TRUNC, write(2),
// close) through the live host's FUSE mount on the maximal profile (256 x 256 =
// 65,536 queues), against the same write to a no-op file of a minimal FUSE mount
// served by the same FUSE code with a trivial handler, at the same path depth
// (sys/bus/ap/aqmask). The sysfs write runs the AP bus' aqmask store as a kernel task
// and is journaled in SQLite before the reply. Until vfio_ap's assign_* attributes are
// the target, "+0" (a mask write that changes nothing) is the measured operation.
// Target: ratio <= 1.5. Prints one JSON object as the last line.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuseSession } from '../src/live/fuse/session.js';
import { StaticFs } from '../src/live/fuse/static_fs.js';

const N = Number(process.argv[2] ?? 2000);
const ROUNDS = 4;
const main = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

/** The writer runs in its own process (this one serves the minimal mount). */
const WRITER = `
const fs = require('fs');
const [path, n, data] = [process.argv[1], Number(process.argv[2]), process.argv[3]];
const lat = new Float64Array(n);
for (let i = 0; i < n; i++) {
  const t0 = process.hrtime.bigint();
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
  fs.writeSync(fd, data);
  fs.closeSync(fd);
  lat[i] = Number(process.hrtime.bigint() - t0) / 1000;
}
process.stdout.write(JSON.stringify(Array.from(lat)));
`;

function writer(path: string, n: number, data: string): Promise<number[]> {
  return new Promise((res, rej) => {
    execFile(process.execPath, ['-e', WRITER, path, String(n), data], { maxBuffer: 256 << 20 }, (err, out, errOut) => {
      if (err) rej(new Error(`writer failed: ${errOut || err.message}`));
      else res(JSON.parse(out) as number[]);
    });
  });
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!;
}

const r1 = mkdtempSync(join(tmpdir(), 'apsim-bench-live-'));
const r2 = mkdtempSync(join(tmpdir(), 'apsim-bench-noop-'));
const daemon = spawn(process.execPath, [main, 'up', '--profile', 'maximal', '--root', r1], { stdio: ['ignore', 'pipe', 'pipe'] });
let dout = '';
let derr = '';
daemon.stdout.on('data', (d: Buffer) => (dout += d.toString()));
daemon.stderr.on('data', (d: Buffer) => (derr += d.toString()));
let session: FuseSession | null = null;
try {
  const t0 = Date.now();
  while (!/API http/.test(dout)) {
    if (daemon.exitCode !== null) throw new Error(`apsim up failed:\n${derr}`);
    if (Date.now() - t0 > 300_000) throw new Error('apsim up did not become ready');
    await new Promise((r) => setTimeout(r, 50));
  }
  const upMs = Date.now() - t0;

  const fsImpl = new StaticFs();
  fsImpl.addFile('bus/ap/aqmask', `0x${'f'.repeat(64)}\n`, 0o644);
  mkdirSync(join(r2, 'sys'));
  session = await FuseSession.mount(join(r2, 'sys'), fsImpl, { subtype: 'apsim-bench' });

  const live = join(r1, 'sys/bus/ap/aqmask');
  const noop = join(r2, 'sys/bus/ap/aqmask');
  // Warm-up (JIT, dentry paths), then alternate rounds to cancel drift.
  await writer(live, 200, '+0\n');
  await writer(noop, 200, '+0\n');
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    a.push(...(await writer(live, N / ROUNDS, '+0\n')));
    b.push(...(await writer(noop, N / ROUNDS, '+0\n')));
  }
  const status = await (await fetch(`http://127.0.0.1:${/API http:\/\/127\.0\.0\.1:(\d+)/.exec(dout)![1]}/status`)).json() as { state: { journal_seq: number }; machine: { queues: number } };
  const sysfsMed = pct(a, 50);
  const noopMed = pct(b, 50);
  const result = {
    benchmark: 'live',
    node: process.version,
    profile: 'maximal',
    queues: status.machine.queues,
    operation: "open(O_WRONLY|O_TRUNC) + write('+0\\n') + close, /sys/bus/ap/aqmask (changes nothing; journaled)",
    iterations: a.length,
    up_ms: upMs,
    sysfs_write_us: { p50: round(sysfsMed), p90: round(pct(a, 90)), p99: round(pct(a, 99)) },
    noop_fuse_write_us: { p50: round(noopMed), p90: round(pct(b, 90)), p99: round(pct(b, 99)) },
    ratio_p50: round(sysfsMed / noopMed),
    journal_entries: status.state.journal_seq,
    noop_writes_seen: fsImpl.writeCount,
    target: { ratio_p50: 1.5 },
  };
  console.log(JSON.stringify(result));
} finally {
  await session?.unmount();
  daemon.kill('SIGTERM');
  await new Promise((r) => (daemon.exitCode !== null ? r(null) : daemon.on('exit', r)));
  rmSync(r1, { recursive: true, force: true });
  rmSync(r2, { recursive: true, force: true });
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
