// npm run bench -- live [iterations]
// Latency of one `echo 5 > assign_adapter` write (open O_WRONLY|O_TRUNC, write(2),
// close) through the live host's FUSE mount on the maximal profile (256 x 256 =
// 65,536 queues) with 100 mdevs (mdev i has usage domain i; the measured one also
// adapter 5), against the same write to a no-op file of a minimal FUSE mount served
// by the same FUSE code with a trivial handler, at the same path
// (sys/devices/vfio_ap/matrix/UUID/assign_adapter). The sysfs write runs vfio_ap's
// assign_adapter store as a kernel task (locks, the sharing check against the other
// 99 mdevs, the filter) and is journaled in SQLite before the reply.
// Target: ratio <= 1.5. Prints one JSON object as the last line.
//
// Diagnostic, not part of the ratio: noop_after_live_unassign_us times the no-op write
// when it directly follows a live unassign_adapter in the same writer (one extra run
// cycling assign, unassign, no-op). The measured assign also follows an unassign,
// whose ~20 ms of real-time reset waits leave the CPUs idle and the caches cold; on a
// 2-vCPU VM a write after such a pause costs 1.5-3x more even on the no-op mount
// (820-850 us after a 20 ms sleep vs 250-560 us back to back), which the back-to-back
// no-op rounds never pay. The no-op server has been idle longer than the daemon
// there, so this baseline leans high.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuseSession } from '../src/live/fuse/session.js';
import { StaticFs } from '../src/live/fuse/static_fs.js';

const N = Number(process.argv[2] ?? 2000);
const ROUNDS = 4;
const MDEVS = 100;
const uuid = (i: number) => `${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
const main = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

/** The writer runs in its own process (this one serves the minimal mount). */
const WRITER = `
const fs = require('fs');
const [paths, n, data] = [JSON.parse(process.argv[1]), Number(process.argv[2]), process.argv[3]];
const lat = new Float64Array(n);
for (let i = 0; i < n; i++) {
  const t0 = process.hrtime.bigint();
  const fd = fs.openSync(paths[i % paths.length], fs.constants.O_WRONLY | fs.constants.O_TRUNC);
  fs.writeSync(fd, data);
  fs.closeSync(fd);
  lat[i] = Number(process.hrtime.bigint() - t0) / 1000;
}
process.stdout.write(JSON.stringify(Array.from(lat)));
`;

/** n writes of data, cycling over paths; latencies in us. */
function writer(paths: string[], n: number, data: string): Promise<number[]> {
  return new Promise((res, rej) => {
    execFile(process.execPath, ['-e', WRITER, JSON.stringify(paths), String(n), data], { maxBuffer: 256 << 20 }, (err, out, errOut) => {
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

  // 100 mdevs through the FUSE mount, like a management tool would create them.
  const S = join(r1, 'sys');
  const T = `${S}/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough`;
  const t1 = Date.now();
  const script: string[] = [];
  for (let i = 0; i < MDEVS; i++) script.push(`echo ${uuid(i)} > ${T}/create && echo ${i} > ${S}/devices/vfio_ap/matrix/${uuid(i)}/assign_domain`);
  // Adapter 5's queues reserved for vfio_ap (256 queues rebind), as assignment requires.
  script.unshift(`echo -5 > ${S}/bus/ap/apmask`);
  await new Promise<void>((res, rej) =>
    execFile('bash', ['-ec', script.join('\n')], (err, _o, e) => (err ? rej(new Error(`mdev setup failed: ${e || err.message}`)) : res())),
  );
  const setupMs = Date.now() - t1;
  // assign_adapter of an adapter already assigned returns at once, so the writer
  // alternates assign_adapter and unassign_adapter: every assign does the full work.
  const rels = [`devices/vfio_ap/matrix/${uuid(0)}/assign_adapter`, `devices/vfio_ap/matrix/${uuid(0)}/unassign_adapter`];

  const fsImpl = new StaticFs();
  for (const rel of rels) fsImpl.addFile(rel, '', 0o200);
  mkdirSync(join(r2, 'sys'));
  session = await FuseSession.mount(join(r2, 'sys'), fsImpl, { subtype: 'apsim-bench' });

  const live = rels.map((rel) => join(r1, 'sys', rel));
  const noop = rels.map((rel) => join(r2, 'sys', rel));
  // Warm-up (JIT, dentry paths), then alternate rounds to cancel drift.
  await writer(live, 200, '5\n');
  await writer(noop, 200, '5\n');
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    a.push(...(await writer(live, N / ROUNDS, '5\n')));
    b.push(...(await writer(noop, N / ROUNDS, '5\n')));
  }
  // Diagnostic (see the header): the no-op write right after a live unassign.
  const mixed = await writer([live[0]!, live[1]!, noop[0]!], 3 * Math.floor(N / 4), '5\n');
  const noopAfterUnassign = mixed.filter((_, i) => i % 3 === 2);
  const status = await (await fetch(`http://127.0.0.1:${/API http:\/\/127\.0\.0\.1:(\d+)/.exec(dout)![1]}/status`)).json() as { state: { journal_seq: number }; machine: { queues: number } };
  // Even writes are assign_adapter, odd ones unassign_adapter.
  const assign = a.filter((_, i) => i % 2 === 0);
  const unassign = a.filter((_, i) => i % 2 === 1);
  const noopAssign = b.filter((_, i) => i % 2 === 0);
  const sysfsMed = pct(assign, 50);
  const noopMed = pct(noopAssign, 50);
  const result = {
    benchmark: 'live',
    node: process.version,
    profile: 'maximal',
    queues: status.machine.queues,
    operation: "open(O_WRONLY|O_TRUNC) + write('5\\n') + close, /sys/devices/vfio_ap/matrix/<mdev 0>/assign_adapter (vfio_ap store: validate against 99 other mdevs, link, filter; journaled), alternating with unassign_adapter",
    mdevs: MDEVS,
    mdev_setup_ms: setupMs,
    iterations: assign.length,
    up_ms: upMs,
    sysfs_write_us: { p50: round(sysfsMed), p90: round(pct(assign, 90)), p99: round(pct(assign, 99)) },
    unassign_write_us: { p50: round(pct(unassign, 50)), p90: round(pct(unassign, 90)), p99: round(pct(unassign, 99)) },
    noop_fuse_write_us: { p50: round(noopMed), p90: round(pct(noopAssign, 90)), p99: round(pct(noopAssign, 99)) },
    ratio_p50: round(sysfsMed / noopMed),
    noop_after_live_unassign_us: { p50: round(pct(noopAfterUnassign, 50)), p90: round(pct(noopAfterUnassign, 90)) },
    ratio_p50_vs_noop_after_live_unassign: round(sysfsMed / pct(noopAfterUnassign, 50)),
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
