// Persistence of a live host: an embedded SQLite database (better-sqlite3, WAL mode)
// holding the host profile, a journal of acknowledged state-changing operations and
// state snapshots.
//
// * Acknowledged = journaled: the row is committed before the FUSE or HTTP reply
//   goes back, so after kill -9 every operation a client saw succeed is in the
//   journal (and at most the operations in flight at the kill are there without the
//   client having seen the reply).
// * Every commit's WAL frames are written (write(2)) before the commit returns, so a
//   commit survives the process dying (kill -9, a crash) in every mode. The default
//   synchronous=OFF never fsyncs (12 us per commit here); `--sync normal` fsyncs at
//   checkpoints and `--sync full` at every commit, for OS crashes and power loss.
// * A restart boots the host from the stored profile and replays the journal in
//   order (see replay.ts). Snapshots record the observable state after a journal
//   position; replay compares against them to detect divergence. The journal is
//   never truncated: the model has no serialised form to restore a snapshot from.
import { createRequire } from 'node:module';
import type { GuestOp } from './guests.js';

/** The subset of better-sqlite3's API used here. */
interface Statement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface Database {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(source: string): void;
  prepare(source: string): Statement;
  close(): void;
  readonly open: boolean;
}
type DatabaseCtor = new (filename: string, options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number }) => Database;

let ctor: DatabaseCtor | null = null;
function sqlite(): DatabaseCtor {
  if (ctor) return ctor;
  const require = createRequire(import.meta.url);
  try {
    ctor = require('better-sqlite3') as DatabaseCtor;
  } catch (e) {
    throw new Error(`persistence needs the better-sqlite3 module (run scripts/setup.sh): ${e instanceof Error ? e.message : String(e)}`);
  }
  return ctor;
}

export const SCHEMA_VERSION = 1;

/** SQLite's synchronous setting: off (default), normal or full. */
export type SyncMode = 'off' | 'normal' | 'full';

/** A journal entry's operation: a sysfs store, an HMC operation or a guest operation (guests.ts). */
export type JournalOp =
  | { readonly kind: 'sysfs'; readonly path: string; readonly data: string; readonly uid: number; readonly gid?: number; readonly comm?: string }
  /** chmod/chown of a sysfs node (absent fields unchanged), by uid/gid. */
  | { readonly kind: 'setattr'; readonly path: string; readonly mode?: number; readonly owner?: number; readonly group?: number; readonly uid: number; readonly gid: number }
  | { readonly kind: 'hmc'; readonly op: HmcOpName; readonly id: number; readonly on?: boolean }
  | GuestOp;

export const HMC_OPS = [
  'add-adapter',
  'remove-adapter',
  'add-usage-domain',
  'remove-usage-domain',
  'add-control-domain',
  'remove-control-domain',
  'card-config',
  'checkstop',
] as const;
export type HmcOpName = (typeof HMC_OPS)[number];

export interface JournalEntry {
  readonly seq: number;
  /** Virtual time (ns) at which the operation completed. */
  readonly vt: number;
  /** Wall clock (ms since the epoch). */
  readonly wall: number;
  readonly op: JournalOp;
}

export interface Snapshot {
  readonly seq: number;
  readonly vt: number;
  readonly wall: number;
  readonly state: string;
}

export interface StoredProfile {
  /** The profile's JSON source. */
  readonly json: unknown;
  /** How it was given: a builtin name or a file path. */
  readonly source: string;
}

export class Store {
  private readonly db: Database;
  private readonly insJournal: Statement;
  private readonly insSnapshot: Statement;
  private lastSeqCache: number;

  private constructor(
    readonly path: string,
    db: Database,
  ) {
    this.db = db;
    this.insJournal = db.prepare('INSERT INTO journal (vt, wall, kind, body) VALUES (?, ?, ?, ?)');
    this.insSnapshot = db.prepare('INSERT OR REPLACE INTO snapshots (seq, vt, wall, state) VALUES (?, ?, ?, ?)');
    this.lastSeqCache = (db.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM journal').get() as { s: number }).s;
  }

  /** Opens (creating if needed) the state database. */
  static open(path: string, opts: { sync?: SyncMode; readonly?: boolean } = {}): Store {
    const D = sqlite();
    const db = new D(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false, timeout: 5000 });
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${(opts.sync ?? 'off').toUpperCase()}`);
      db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS journal (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          vt INTEGER NOT NULL,
          wall INTEGER NOT NULL,
          kind TEXT NOT NULL,
          body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS snapshots (
          seq INTEGER PRIMARY KEY,
          vt INTEGER NOT NULL,
          wall INTEGER NOT NULL,
          state TEXT NOT NULL);
      `);
      const v = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined;
      if (!v) db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
      else if (Number(v.value) !== SCHEMA_VERSION) {
        db.close();
        throw new Error(`${path}: state schema ${v.value} is not supported (this apsim writes schema ${SCHEMA_VERSION})`);
      }
    }
    return new Store(path, db);
  }

  // ------------------------------------------------------------ meta

  getMeta(key: string): string | null {
    const r = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return r ? r.value : null;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  }

  get profile(): StoredProfile | null {
    const j = this.getMeta('profile');
    if (j === null) return null;
    return { json: JSON.parse(j) as unknown, source: this.getMeta('profile_source') ?? '?' };
  }

  setProfile(p: StoredProfile): void {
    this.setMeta('profile', JSON.stringify(p.json));
    this.setMeta('profile_source', p.source);
  }

  // ------------------------------------------------------------ journal

  /** Commits one acknowledged operation; returns its sequence number. */
  append(vt: number, op: JournalOp): number {
    const { kind, ...body } = op;
    const r = this.insJournal.run(Math.round(vt), Date.now(), kind, JSON.stringify(body));
    this.lastSeqCache = Number(r.lastInsertRowid);
    return this.lastSeqCache;
  }

  get lastSeq(): number {
    return this.lastSeqCache;
  }

  /** Journal entries after seq `after`, in order. */
  entries(after = 0): JournalEntry[] {
    const rows = this.db.prepare('SELECT seq, vt, wall, kind, body FROM journal WHERE seq > ? ORDER BY seq').all(after) as Array<{
      seq: number;
      vt: number;
      wall: number;
      kind: string;
      body: string;
    }>;
    return rows.map((r) => ({ seq: r.seq, vt: r.vt, wall: r.wall, op: { kind: r.kind, ...(JSON.parse(r.body) as object) } as JournalOp }));
  }

  // ------------------------------------------------------------ snapshots

  saveSnapshot(seq: number, vt: number, state: string): void {
    this.insSnapshot.run(seq, Math.round(vt), Date.now(), state);
    // Keep the last few only.
    this.db.prepare('DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 8)').run();
  }

  snapshots(): Snapshot[] {
    return this.db.prepare('SELECT seq, vt, wall, state FROM snapshots ORDER BY seq').all() as Snapshot[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
