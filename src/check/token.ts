// Replay tokens: everything needed to re-run one execution byte-identically.
// Layout (all integers are LEB128 varints, strings are length-prefixed UTF-8), then
// base64url: format version, scenario name, config hash (scenario + profile + mutant
// + apsim version), strategy name, seed, execution index, mutant name, choice list.
// Choices are task ids; runs of the same id are run-length coded because schedules
// mostly continue the running task.

export const TOKEN_VERSION = 1;
const PREFIX = 'apsim1-';

export interface ReplayToken {
  /** Scenario name (or module path for user scenarios). */
  readonly scenario: string;
  /** Hash of the scenario configuration and code version (see configHash). */
  readonly config: number;
  /** Strategy that found the failure (for the record; replay does not need it). */
  readonly strategy: string;
  readonly seed: number;
  /** Execution index within the campaign at which the failure was found. */
  readonly execution: number;
  /** Mutant name, or '' for the production pieces. */
  readonly mutant: string;
  /** Task id chosen at each choice point of the run phase. */
  readonly choices: readonly number[];
}

class Writer {
  readonly bytes: number[] = [];
  uint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`token: ${n} is not a non-negative integer`);
    while (n >= 0x80) {
      this.bytes.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.bytes.push(n);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.uint(b.length);
    for (const x of b) this.bytes.push(x);
  }
}

class Reader {
  private i = 0;
  constructor(private readonly b: Uint8Array) {}
  uint(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (this.i >= this.b.length) throw new TokenError('truncated');
      const x = this.b[this.i++]!;
      n += (x & 0x7f) * mul;
      if (x < 0x80) return n;
      mul *= 0x80;
      if (mul > 2 ** 56) throw new TokenError('varint too long');
    }
  }
  str(): string {
    const len = this.uint();
    if (this.i + len > this.b.length) throw new TokenError('truncated');
    const s = Buffer.from(this.b.subarray(this.i, this.i + len)).toString('utf8');
    this.i += len;
    return s;
  }
  get done(): boolean {
    return this.i === this.b.length;
  }
}

export class TokenError extends Error {
  constructor(what: string) {
    super(`invalid replay token: ${what}`);
    this.name = 'TokenError';
  }
}

export function encodeToken(t: ReplayToken): string {
  const w = new Writer();
  w.uint(TOKEN_VERSION);
  w.str(t.scenario);
  w.uint(t.config >>> 0);
  w.str(t.strategy);
  w.uint(t.seed);
  w.uint(t.execution);
  w.str(t.mutant);
  // Run-length coded choices: (id, run length) pairs.
  const c = t.choices;
  let runs = 0;
  for (let i = 0; i < c.length; i++) if (i === 0 || c[i] !== c[i - 1]) runs++;
  w.uint(runs);
  for (let i = 0; i < c.length; ) {
    let j = i + 1;
    while (j < c.length && c[j] === c[i]) j++;
    w.uint(c[i]!);
    w.uint(j - i);
    i = j;
  }
  return PREFIX + Buffer.from(w.bytes).toString('base64url');
}

export function decodeToken(s: string): ReplayToken {
  const text = s.trim();
  if (!text.startsWith(PREFIX)) throw new TokenError(`expected it to start with "${PREFIX}"`);
  const body = text.slice(PREFIX.length);
  if (!/^[A-Za-z0-9_-]*$/.test(body)) throw new TokenError('not base64url');
  const r = new Reader(Buffer.from(body, 'base64url'));
  const v = r.uint();
  if (v !== TOKEN_VERSION) throw new TokenError(`format version ${v}, this apsim reads ${TOKEN_VERSION}`);
  const scenario = r.str();
  const config = r.uint();
  const strategy = r.str();
  const seed = r.uint();
  const execution = r.uint();
  const mutant = r.str();
  const runs = r.uint();
  const choices: number[] = [];
  for (let i = 0; i < runs; i++) {
    const id = r.uint();
    const n = r.uint();
    if (n === 0 || choices.length + n > 50_000_000) throw new TokenError('bad run length');
    for (let j = 0; j < n; j++) choices.push(id);
  }
  if (!r.done) throw new TokenError('trailing bytes');
  return { scenario, config, strategy, seed, execution, mutant, choices };
}

/** FNV-1a over a string: the configuration hash in tokens. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
