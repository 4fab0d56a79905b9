// The CLI side of the live host: option parsing shared by the live verbs, daemon
// discovery (run.json) and HTTP requests with clear errors when no daemon runs.
import { defaultRoot, pidAlive, readRunInfo, runInfoPath, type RunInfo } from './runinfo.js';

/** A usage error (exit 2). */
export class UsageError extends Error {}
/** A failure talking to the daemon (exit 1). */
export class ClientError extends Error {}

export interface OptSpec {
  /** Options taking a value: name → aliases. */
  readonly values?: readonly string[];
  /** Boolean flags. */
  readonly flags?: readonly string[];
  /** Allowed number of positional arguments [min, max]. */
  readonly positional?: readonly [number, number];
}

export interface Parsed {
  readonly values: Map<string, string>;
  readonly flags: Set<string>;
  readonly positional: string[];
}

/** Parses `--name value`, `--name=value`, `-x` flags; every verb accepts --root and --json. */
export function parseArgs(cmd: string, args: readonly string[], spec: OptSpec): Parsed {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const positional: string[] = [];
  const valueOpts = new Set(['--root', ...(spec.values ?? [])]);
  const flagOpts = new Set(['--json', ...(spec.flags ?? [])]);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('-') && a !== '-') {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (valueOpts.has(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : args[++i];
        if (v === undefined) throw new UsageError(`apsim ${cmd}: ${name} needs a value`);
        values.set(name, v);
      } else if (flagOpts.has(name) && eq < 0) flags.add(name);
      else throw new UsageError(`apsim ${cmd}: unknown option '${a}'`);
    } else positional.push(a);
  }
  const [min, max] = spec.positional ?? [0, 0];
  if (positional.length < min) throw new UsageError(`apsim ${cmd}: missing argument`);
  if (positional.length > max) throw new UsageError(`apsim ${cmd}: unexpected argument '${positional[max]}'`);
  return { values, flags, positional };
}

export function rootOf(p: Parsed): string {
  return p.values.get('--root') ?? defaultRoot();
}

/** The running daemon of root, or a ClientError saying why there is none. */
export function findDaemon(root: string): RunInfo {
  const ri = readRunInfo(root);
  if (!ri) throw new ClientError(`no apsim daemon is running on ${root} (no ${runInfoPath(root)}); start one with 'apsim up --root ${root}'`);
  if (!pidAlive(ri.pid)) {
    throw new ClientError(`the apsim daemon on ${root} (pid ${ri.pid}) is not running any more (crashed or killed); 'apsim up --root ${root}' restarts it from its journal, 'apsim down --root ${root}' cleans up`);
  }
  return ri;
}

export function baseUrl(ri: RunInfo): string {
  const host = ri.address.includes(':') ? `[${ri.address}]` : ri.address === '0.0.0.0' ? '127.0.0.1' : ri.address === '::' ? '[::1]' : ri.address;
  return `http://${host}:${ri.port}`;
}

/** Sends a request to the daemon; throws ClientError with the API's message on 4xx/5xx. */
export async function request(ri: RunInfo, method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  if (ri.token) headers['authorization'] = `Bearer ${ri.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(baseUrl(ri) + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new ClientError(`cannot reach the apsim daemon (pid ${ri.pid}) at ${baseUrl(ri)}: ${cause}`);
  }
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try {
      const j = (await res.json()) as { error?: string };
      if (j.error) msg = j.error;
    } catch {
      /* not JSON */
    }
    throw new ClientError(msg);
  }
  return res;
}

export async function requestJson<T>(ri: RunInfo, method: string, path: string, body?: unknown): Promise<T> {
  return (await (await request(ri, method, path, body)).json()) as T;
}

/** Runs a verb body, mapping errors to exit codes and messages. */
export async function runVerb(err: (s: string) => void, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof UsageError) {
      err(`${e.message}\nRun 'apsim --help' for usage.\n`);
      return 2;
    }
    err(`apsim: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

/** Parses an adapter/domain id: decimal or 0x hex. */
export function parseId(s: string, what: string): number {
  const v = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s.slice(2), 16) : /^\d+$/.test(s) ? parseInt(s, 10) : NaN;
  if (!Number.isInteger(v) || v < 0 || v > 255) throw new UsageError(`apsim hmc: invalid ${what} '${s}' (decimal or 0x hex, 0..255)`);
  return v;
}

/** Reads an SSE stream, calling fn(event, data) per event until the stream ends. */
export async function readSse(res: Response, fn: (event: string, data: string) => void): Promise<void> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) fn(event, data.join('\n'));
    }
  }
}
