// npm run bench -- host [profile]
// Boot time and resident memory of a simulated host (default: the maximal profile,
// 256 adapters x 256 domains = 65,536 queue devices), and the time of one full
// rescan (a write to /sys/bus/ap/scans). Targets: boot <= 2 s, RSS <= 500 MB.
import { Host } from '../src/host/index.js';

const profile = process.argv[2] ?? 'maximal';
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const rss0 = process.memoryUsage().rss;
const t0 = process.hrtime.bigint();
const h = Host.boot({ profile });
const t1 = process.hrtime.bigint();
gc?.();
const rss1 = process.memoryUsage().rss;
const heap1 = process.memoryUsage().heapUsed;
const queues = h.ap.queues.size;
const cards = h.ap.cards.size;
const bindings = h.read('/sys/bus/ap/bindings').trim();

// One full rescan: QCI unchanged, every adapter and domain TAPQ'd again.
const rescans: number[] = [];
for (let i = 0; i < 3; i++) {
  const s0 = process.hrtime.bigint();
  h.write('/sys/bus/ap/scans', '1');
  rescans.push(Number(process.hrtime.bigint() - s0) / 1e6);
}
rescans.sort((a, b) => a - b);

// A sysfs read through the library API on the big host.
const r0 = process.hrtime.bigint();
const N = 2000;
for (let i = 0; i < N; i++) h.read('/sys/devices/ap/card05/05.0004/online');
const readUs = Number(process.hrtime.bigint() - r0) / 1e3 / N;

const result = {
  benchmark: 'host',
  profile,
  node: process.version,
  cards,
  queues,
  bindings,
  boot_ms: Math.round(Number(t1 - t0) / 1e6),
  rss_mb: Math.round(rss1 / 1e6),
  rss_growth_mb: Math.round((rss1 - rss0) / 1e6),
  heap_used_mb: Math.round(heap1 / 1e6),
  rescan_ms: Math.round(rescans[1]! * 10) / 10,
  sysfs_read_us: Math.round(readUs * 10) / 10,
  sched_steps_boot: h.k.steps,
  targets: { boot_ms: 2000, rss_mb: 500 },
};
console.log(JSON.stringify(result));
