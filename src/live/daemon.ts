// `apsim up`: one process holding the simulated host (scheduler in live mode), its
// sysfs mounted through FUSE at ROOT/sys, the HTTP API and the SQLite state.
//
// ROOT (--root) holds:   sys/       the FUSE mount point (must be empty)
//                        run.json   pid, port, address, token of the running daemon (0600)
//                        apsim.db   the state (journal, profile, snapshots) unless --state
//                        apsim.log  output of a detached daemon (up --detach)
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Host } from '../host/index.js';
import { formatRecord, type PrintkRecord } from '../kernel/index.js';
import { formatUdevMonitor, type Uevent } from '../sysfs/index.js';
import { FuseSession, mountAt, startUnmountWatchdog, unmountStaleSync } from './fuse/session.js';
import { SysfsFuse, type SetattrEvent, type StoreEvent } from './sysfs_fs.js';
import { LiveDriver } from './driver.js';
import { Store, type JournalOp, type SyncMode } from './store.js';
import { bootLiveHost, captureState_gen, loadProfile, newGuestSet, replayJournal, SETTLE_NS, type ReplayReport } from './state.js';
import { liveRunner, type GuestEvent, type GuestSet } from './guests.js';
import { startHttp } from './http.js';
import { pidAlive, readRunInfo, runInfoPath, type RunInfo } from './runinfo.js';

export interface UpOptions {
  readonly root: string;
  readonly profile?: string;
  readonly state?: string;
  /** TCP port (0: any free port). */
  readonly port?: number;
  /** Listen address (default 127.0.0.1). Anything but loopback requires a token. */
  readonly listen?: string;
  readonly token?: string;
  readonly sync?: SyncMode;
  /** Journal entries between snapshots (default 1000). */
  readonly snapshotEvery?: number;
  /** Minimum real time between two snapshots in seconds (default 30): a capture reads every device. */
  readonly snapshotInterval?: number;
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

/** A failure to start, with the message the user sees. */
export class UpError extends Error {}

/** An SSE subscriber of the event stream. */
export type LiveEvent =
  | { type: 'dmesg'; seq: number; ts: number; level: number; text: string; line: string }
  | { type: 'uevent'; seqnum: number; ts: number; action: string; devpath: string; subsystem: string; env: readonly string[]; text: string }
  | { type: 'journal'; seq: number; op: JournalOp }
  | GuestEvent;

export class LiveHost {
  readonly started = Date.now();
  private readonly listeners = new Set<(e: LiveEvent) => void>();
  session: FuseSession | null = null;
  http: Server | null = null;
  port = 0;
  private shuttingDown: Promise<void> | null = null;
  private sinceSnapshot = 0;
  private snapshotBusy = false;
  private lastSnapshotAt = 0;
  readonly token: string | null;
  private exitResolve: (code: number) => void = () => {};
  readonly exited: Promise<number>;

  constructor(
    readonly host: Host,
    readonly driver: LiveDriver,
    readonly store: Store,
    readonly fuse: SysfsFuse | null,
    readonly opts: UpOptions,
    readonly replay: ReplayReport,
    readonly guests: GuestSet,
  ) {
    this.token = opts.token ?? (isLoopback(opts.listen ?? '127.0.0.1') ? null : randomBytes(24).toString('hex'));
    this.exited = new Promise((r) => (this.exitResolve = r));
    host.k.log.subscribe((r) => this.emit(dmesgEvent(r)));
    host.sysfs.uevents.subscribe((u) => this.emit(ueventEvent(u)));
    // From now on guests run on the live loop; QEMU's handled notifications become events.
    guests.runner = liveRunner(host.k, () => driver.kick());
    guests.onEvent((e) => this.emit(e));
    driver.afterRun.push(() => guests.poll());
  }

  get mountpoint(): string {
    return path.join(this.opts.root, 'sys');
  }

  /** Connected event streams (GET /events). */
  get subscribers(): number {
    return this.listeners.size;
  }

  subscribe(fn: (e: LiveEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(e: LiveEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        /* a broken subscriber must not disturb the kernel */
      }
    }
  }

  /** Journals an acknowledged operation (before the reply is sent). */
  journal(op: JournalOp): number {
    const seq = this.store.append(this.host.k.now(), op);
    this.emit({ type: 'journal', seq, op });
    if (++this.sinceSnapshot >= (this.opts.snapshotEvery ?? 1000) && Date.now() - this.lastSnapshotAt >= (this.opts.snapshotInterval ?? 30) * 1000) {
      this.lastSnapshotAt = Date.now();
      void this.snapshot();
    }
    return seq;
  }

  /** The FUSE store hook. */
  onStore = (e: StoreEvent): void => {
    // The gid matters only to non-root writers (group permissions after a chown).
    this.journal({ kind: 'sysfs', path: e.path, data: e.data, uid: e.uid, ...(e.uid !== 0 ? { gid: e.gid } : {}), comm: e.comm });
  };

  /** The FUSE chmod/chown hook. */
  onSetattr = (e: SetattrEvent): void => {
    const { mode, uid: owner, gid: group } = e.req;
    this.journal({ kind: 'setattr', path: e.path, ...(mode !== undefined ? { mode } : {}), ...(owner !== undefined ? { owner } : {}), ...(group !== undefined ? { group } : {}), uid: e.uid, gid: e.gid });
  };

  /** Captures the observable state as a kernel task (the live loop runs it). */
  captureState(): Promise<string> {
    return this.driver.spawn('apsim-state', captureState_gen(this.host.k, this.host.sysfs));
  }

  /**
   * Records a snapshot of the state at the current journal position. It is taken only
   * when the kernel is quiescent (no task alive, every completed operation journaled:
   * journaling happens in promise callbacks, so we start from a fresh macrotask) and
   * only if the capture finishes in one synchronous scheduler run, so no operation can
   * interleave with it.
   */
  snapshot(): Promise<void> {
    if (this.snapshotBusy) return Promise.resolve();
    this.snapshotBusy = true;
    return new Promise<void>((resolve) => {
      let tries = 0;
      const attempt = () => {
        try {
          const k = this.host.k;
          this.driver.kick();
          if (k.liveTasks().length > 0 || k.nextDeadline() < k.now() + SETTLE_NS) {
            if (++tries < 200) return void setTimeout(attempt, 25).unref();
            return done();
          }
          const seq = this.store.lastSeq;
          const r = this.driver.runNow('apsim-state', captureState_gen(k, this.host.sysfs));
          if (r.done && seq > 0 && seq === this.store.lastSeq) {
            this.store.saveSnapshot(seq, k.now(), r.value);
            this.sinceSnapshot = 0;
          }
        } catch (e) {
          this.opts.err(`apsim: snapshot failed: ${e instanceof Error ? e.message : String(e)}\n`);
        }
        done();
      };
      const done = () => {
        this.snapshotBusy = false;
        resolve();
      };
      setImmediate(attempt);
    });
  }

  /** Clean shutdown: unmount, close the API, final snapshot, remove run.json. */
  shutdown(code = 0, why = 'shutdown'): Promise<void> {
    if (this.shuttingDown) return this.shuttingDown;
    this.shuttingDown = (async () => {
      this.opts.err(`apsim: ${why}: unmounting ${this.mountpoint}\n`);
      try {
        await this.session?.unmount();
      } catch (e) {
        this.opts.err(`apsim: unmount failed: ${String(e)}\n`);
      }
      try {
        if (this.store.lastSeq > 0) await withTimeout(this.snapshot(), 5000);
      } catch {
        /* best effort */
      }
      await new Promise<void>((r) => {
        if (!this.http) return r();
        this.http.close(() => r());
        this.http.closeAllConnections();
      });
      this.driver.stop();
      this.store.close();
      try {
        const ri = readRunInfo(this.opts.root);
        if (ri && ri.pid === process.pid) fs.unlinkSync(runInfoPath(this.opts.root));
      } catch {
        /* already gone */
      }
      this.opts.err(`apsim: stopped\n`);
      this.exitResolve(code);
    })();
    return this.shuttingDown;
  }
}

function dmesgEvent(r: PrintkRecord): LiveEvent {
  return { type: 'dmesg', seq: r.seq, ts: r.ts, level: r.level, text: r.text, line: formatRecord(r).replace(/\n$/, '') };
}

function ueventEvent(u: Uevent): LiveEvent {
  return {
    type: 'uevent',
    seqnum: u.seqnum,
    ts: u.ts,
    action: u.action,
    devpath: u.devpath,
    subsystem: u.subsystem,
    env: u.env,
    text: formatUdevMonitor(u, true).replace(/\n+$/, ''),
  };
}

export function isLoopback(addr: string): boolean {
  return addr === '127.0.0.1' || addr === '::1' || addr === 'localhost' || addr.startsWith('127.');
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}

/**
 * Checks ROOT and its mount point: refuses a running daemon, a busy (mounted) or
 * non-empty mount point; cleans up after a crashed daemon (stale FUSE mount, stale
 * run.json). Returns notes to print.
 */
export function prepareRoot(root: string): string[] {
  const notes: string[] = [];
  fs.mkdirSync(root, { recursive: true });
  const ri = readRunInfo(root);
  if (ri) {
    if (ri.pid !== process.pid && pidAlive(ri.pid)) {
      throw new UpError(`apsim is already running on ${root} (pid ${ri.pid}, http://${ri.address}:${ri.port}); 'apsim down --root ${root}' stops it`);
    }
    fs.rmSync(runInfoPath(root), { force: true });
    notes.push(`removed stale ${runInfoPath(root)} (pid ${ri.pid} is gone)`);
  }
  const mp = path.join(fs.realpathSync(root), 'sys');
  const m = mountAt(mp);
  if (m) {
    if (m.fstype === 'fuse.apsim' && (!ri || !pidAlive(ri.pid))) {
      if (!unmountStaleSync(mp)) throw new UpError(`stale apsim mount at ${mp} could not be unmounted`);
      notes.push(`unmounted a stale apsim mount at ${mp} (its daemon had died)`);
    } else {
      throw new UpError(`mount point ${mp} is busy: ${m.source} (${m.fstype}) is mounted there`);
    }
  }
  let entries: string[];
  try {
    entries = fs.readdirSync(mp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UpError(`mount point ${mp}: ${(e as Error).message}`);
    fs.mkdirSync(mp);
    entries = [];
  }
  if (!fs.statSync(mp).isDirectory()) throw new UpError(`mount point ${mp} is not a directory`);
  if (entries.length > 0) throw new UpError(`mount point ${mp} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, e.g. ${entries[0]}); refusing to mount over it`);
  return notes;
}

/** Runs the daemon until it is shut down; resolves with the exit code. */
export async function up(opts: UpOptions): Promise<number> {
  if (process.getuid?.() !== 0) throw new UpError('apsim up needs root (it mounts a FUSE file system with allow_other)');
  if (!fs.existsSync('/dev/fuse')) throw new UpError('/dev/fuse is missing (load the fuse module or run the container with --device /dev/fuse)');
  if (opts.listen && !isLoopback(opts.listen) && opts.token === undefined) {
    opts.err(`apsim: listening on ${opts.listen}: every request needs the token in ${runInfoPath(opts.root)} (Authorization: Bearer ...)\n`);
  }
  const root = path.resolve(opts.root);
  for (const n of prepareRoot(root)) opts.err(`apsim: ${n}\n`);
  const mp = path.join(fs.realpathSync(root), 'sys');

  // State: the stored profile wins; a different --profile is refused.
  const statePath = path.resolve(opts.state ?? path.join(root, 'apsim.db'));
  const store = Store.open(statePath, { sync: opts.sync ?? 'off' });
  let host: Host;
  let report: ReplayReport;
  let guests: GuestSet;
  try {
    const stored = store.profile;
    let profile = stored;
    if (opts.profile !== undefined) {
      const given = loadProfile(opts.profile);
      if (stored && JSON.stringify(stored.json) !== JSON.stringify(given.json)) {
        throw new UpError(
          `${statePath} holds a host booted with profile '${stored.source}'; refusing to switch to '${opts.profile}' (use another --state or delete the file)`,
        );
      }
      if (!stored) store.setProfile(given);
      profile = given;
    }
    if (!profile) {
      profile = loadProfile('default');
      store.setProfile(profile);
    }
    host = bootLiveHost(profile.json);
    const entries = store.entries();
    const snaps = new Map(store.snapshots().map((s) => [s.seq, { state: s.state, vt: s.vt }] as const));
    guests = newGuestSet(host);
    report = replayJournal(host, entries, snaps, guests);
    if (guests.guests.size) opts.err(`apsim: restarted ${guests.guests.size} guest${guests.guests.size === 1 ? '' : 's'} from the journal: ${[...guests.guests.keys()].join(', ')}\n`);
    if (entries.length) opts.err(`apsim: replayed ${report.ops} journal entr${report.ops === 1 ? 'y' : 'ies'} from ${statePath}\n`);
    for (const f of report.failed) opts.err(`apsim: warning: journal entry ${f.seq} failed on replay: ${f.error}\n`);
    for (const m of report.mismatches) opts.err(`apsim: warning: state after journal entry ${m.seq} differs from its snapshot: ${m.diff}\n`);
    store.setMeta('boots', String(Number(store.getMeta('boots') ?? '0') + 1));
  } catch (e) {
    store.close();
    throw e;
  }

  const driver = new LiveDriver(host.k, (e) => opts.err(`apsim: live loop: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`));
  let live: LiveHost | null = null;
  const fuse = new SysfsFuse(
    host.sysfs,
    driver,
    (e) => live!.onStore(e),
    (e) => live!.onSetattr(e),
  );
  live = new LiveHost(host, driver, store, fuse, { ...opts, root }, report, guests);
  const lh = live;

  // Crash paths: try a clean unmount, then exit; the watchdog covers kill -9.
  const crash = (what: string) => (e: unknown) => {
    opts.err(`apsim: ${what}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    void lh.shutdown(1, 'crash');
    setTimeout(() => process.exit(1), 5000).unref();
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled rejection'));
  process.on('SIGINT', () => void lh.shutdown(0, 'SIGINT'));
  process.on('SIGTERM', () => void lh.shutdown(0, 'SIGTERM'));
  process.on('SIGHUP', () => void lh.shutdown(0, 'SIGHUP'));

  try {
    lh.session = await FuseSession.mount(mp, fuse, {
      subtype: 'apsim',
      fsname: 'apsim',
      onError: (e, op) => opts.err(`apsim: fuse ${op}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`),
      onClosed: (reason) => {
        if (reason !== 'unmounted') opts.err(`apsim: FUSE session ended: ${reason}\n`);
        // Unmounted behind our back (umount by hand): shut down too.
        void lh.shutdown(0, 'sysfs unmounted');
      },
    });
  } catch (e) {
    store.close();
    throw new UpError(`cannot mount ${mp}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const mid = lh.session.mountId;
  if (mid !== null) startUnmountWatchdog(process.pid, mp, mid);

  try {
    const { server, port } = await startHttp(lh, opts.listen ?? '127.0.0.1', opts.port ?? 0);
    lh.http = server;
    lh.port = port;
  } catch (e) {
    await lh.session.unmount();
    store.close();
    throw new UpError(`cannot listen on ${opts.listen ?? '127.0.0.1'}:${opts.port ?? 0}: ${e instanceof Error ? e.message : String(e)}`);
  }
  driver.kick();

  const info: RunInfo = {
    pid: process.pid,
    address: opts.listen ?? '127.0.0.1',
    port: lh.port,
    token: lh.token,
    mountpoint: mp,
    state: statePath,
    profile: store.profile?.source ?? '?',
    started: new Date(lh.started).toISOString(),
  };
  const tmp = `${runInfoPath(root)}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, runInfoPath(root));

  const q = host.ap.queues.size;
  const c = host.ap.cards.size;
  opts.out(
    `apsim: up: sysfs at ${mp}, API http://${info.address}:${lh.port}, pid ${process.pid}, profile ${info.profile} (${c} cards, ${q} queues), journal ${store.lastSeq}\n`,
  );
  if (report.mismatches.length || report.failed.length) opts.err(`apsim: warning: replay diverged (see above)\n`);
  return lh.exited;
}
