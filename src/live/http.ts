// The live host's HTTP API (JSON). Loopback only unless `--listen` says otherwise;
// then every request needs `Authorization: Bearer <token>` (the token is in
// ROOT/run.json, mode 0600). Every request is validated: unknown routes 404, wrong
// methods 405, bad parameters or bodies 400, bodies over 64 KiB 413; sysfs paths
// must be normalised absolute paths below /sys (no "..", ".", "//" or NUL).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { E, errnoName, strerror, formatRecord, formatKmsg } from '../kernel/index.js';
import { HmcError } from '../hw/index.js';
import { linkText, statNode, type KAttr, type KDir, type KLink, type KNode } from '../sysfs/index.js';
import type { LiveHost, LiveEvent } from './daemon.js';
import { HMC_OPS, type HmcOpName } from './store.js';
import { applyHmc } from './state.js';
import { openapi } from './openapi.js';
import { GuestError } from './guests.js';

const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function startHttp(lh: LiveHost, address: string, port: number): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    handle(lh, req, res).catch((e: unknown) => {
      if (e instanceof HttpError) sendJson(res, e.status, { error: e.message, ...e.extra });
      else {
        lh.opts.err(`apsim: http: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
        sendJson(res, 500, { error: 'internal error' });
      }
    });
  });
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : port });
    });
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body, null, 1) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

type Route = { method: string; handler: (lh: LiveHost, req: IncomingMessage, res: ServerResponse, q: URLSearchParams) => Promise<void> | void; params: readonly string[] };

const routes: Record<string, Route[]> = {
  '/openapi.json': [{ method: 'GET', params: [], handler: (_lh, _req, res) => sendJson(res, 200, openapi) }],
  '/status': [{ method: 'GET', params: [], handler: (lh, _req, res) => sendJson(res, 200, status(lh)) }],
  '/state': [{ method: 'GET', params: [], handler: async (lh, _req, res) => sendText(res, 200, await lh.captureState()) }],
  '/sysfs': [
    { method: 'GET', params: ['path'], handler: sysfsGet },
    { method: 'PUT', params: ['path'], handler: sysfsPut },
  ],
  '/hmc': [{ method: 'POST', params: [], handler: hmcPost }],
  '/dmesg': [{ method: 'GET', params: ['since', 'format'], handler: dmesgGet }],
  '/events': [{ method: 'GET', params: ['types'], handler: eventsGet }],
  '/journal': [{ method: 'GET', params: ['since'], handler: journalGet }],
  '/export': [{ method: 'POST', params: [], handler: exportPost }],
  '/guests': [
    { method: 'GET', params: [], handler: (lh, _req, res) => sendJson(res, 200, { guests: lh.guests.list() }) },
    { method: 'POST', params: [], handler: guestStart },
    { method: 'DELETE', params: ['name'], handler: guestStop },
  ],
  '/guests/view': [{ method: 'GET', params: ['name'], handler: guestView }],
  '/guests/device': [
    { method: 'POST', params: [], handler: guestDeviceAdd },
    { method: 'DELETE', params: ['name'], handler: guestDeviceDel },
  ],
  '/guests/reset': [{ method: 'POST', params: [], handler: guestReset }],
  '/shutdown': [
    {
      method: 'POST',
      params: [],
      handler: (lh, _req, res) => {
        sendJson(res, 202, { ok: true, pid: process.pid });
        setImmediate(() => void lh.shutdown(0, 'shutdown requested (apsim down)'));
      },
    },
  ],
};

async function handle(lh: LiveHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (lh.token !== null) {
    const h = req.headers['authorization'] ?? '';
    const want = Buffer.from(`Bearer ${lh.token}`);
    const got = Buffer.from(h);
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw new HttpError(401, 'missing or wrong token (Authorization: Bearer <token from run.json>)');
  }
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://apsim');
  } catch {
    throw new HttpError(400, 'malformed request URL');
  }
  const rs = routes[url.pathname];
  if (!rs) throw new HttpError(404, `no such endpoint: ${url.pathname} (see /openapi.json)`);
  const r = rs.find((x) => x.method === req.method);
  if (!r) {
    res.setHeader('allow', rs.map((x) => x.method).join(', '));
    throw new HttpError(405, `${req.method} is not allowed on ${url.pathname} (allowed: ${rs.map((x) => x.method).join(', ')})`);
  }
  for (const k of url.searchParams.keys()) if (!r.params.includes(k)) throw new HttpError(400, `unknown query parameter '${k}' for ${req.method} ${url.pathname}`);
  await r.handler(lh, req, res, url.searchParams);
}

// ------------------------------------------------------------ helpers

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const len = Number(req.headers['content-length'] ?? '0');
  if (len > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage, allowed: readonly string[]): Promise<Record<string, unknown>> {
  const ct = String(req.headers['content-type'] ?? '');
  if (!ct.startsWith('application/json')) throw new HttpError(415, 'expected Content-Type: application/json');
  const b = await readBody(req);
  let j: unknown;
  try {
    j = JSON.parse(b.toString('utf8') || 'null');
  } catch (e) {
    throw new HttpError(400, `invalid JSON body: ${(e as Error).message}`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new HttpError(400, 'the body must be a JSON object');
  for (const k of Object.keys(j)) if (!allowed.includes(k)) throw new HttpError(400, `unknown field '${k}' (allowed: ${allowed.join(', ')})`);
  return j as Record<string, unknown>;
}

/** Validates a sysfs path: absolute, below /sys, normalised, no traversal. */
export function checkSysfsPath(p: string | null): string {
  if (p === null || p === '') throw new HttpError(400, "missing query parameter 'path' (e.g. ?path=/sys/bus/ap/apmask)");
  if (p.length > 4096) throw new HttpError(400, 'path too long');
  if (p.includes('\0')) throw new HttpError(400, 'path contains a NUL byte');
  if (p !== '/sys' && !p.startsWith('/sys/')) throw new HttpError(400, `path must be absolute and below /sys: ${JSON.stringify(p)}`);
  const parts = p.split('/').slice(1);
  if (parts.some((c, i) => c === '..' || c === '.' || (c === '' && i < parts.length - 1)) || (parts.length > 1 && parts[parts.length - 1] === '')) {
    throw new HttpError(400, `path must be normalised (no '.', '..', '//' or trailing '/'): ${JSON.stringify(p)}`);
  }
  return p;
}

function errnoStatus(errno: number): number {
  switch (errno) {
    case E.ENOENT:
      return 404;
    case E.EACCES:
    case E.EPERM:
      return 403;
    case E.EBUSY:
    case E.EADDRINUSE:
    case E.EADDRNOTAVAIL:
    case E.EEXIST:
      return 409;
    default:
      return 422;
  }
}

function errnoBody(errno: number, path: string): Record<string, unknown> {
  return { errno, code: errnoName(errno), message: strerror(errno), path };
}

function lookupNode(lh: LiveHost, p: string, follow: boolean): KNode {
  try {
    return lh.host.sysfs.lookup(p, follow);
  } catch (e) {
    const errno = (e as { errno?: number }).errno ?? E.ENOENT;
    throw new HttpError(errnoStatus(errno), `${p}: ${strerror(errno)}`, errnoBody(errno, p));
  }
}

// ------------------------------------------------------------ endpoints

function status(lh: LiveHost) {
  const h = lh.host;
  const k = h.k;
  return {
    apsim: 'live',
    pid: process.pid,
    started: new Date(lh.started).toISOString(),
    uptime_s: Math.round((Date.now() - lh.started) / 1000),
    virtual_time_ns: k.now(),
    profile: lh.store.profile?.source ?? null,
    machine: { name: h.profile.name, cards: h.ap.cards.size, queues: h.ap.queues.size },
    mountpoint: lh.mountpoint,
    mounted: lh.session !== null && !lh.session.isClosed,
    http: { port: lh.port, token_required: lh.token !== null },
    state: { path: lh.store.path, journal_seq: lh.store.lastSeq, replayed: lh.replay.ops, replay_failed: lh.replay.failed.length, snapshots_verified: lh.replay.verified, snapshot_mismatches: lh.replay.mismatches.length },
    kernel: { tasks: k.liveTasks().length, steps: k.steps, bugs: k.bugs.length, dmesg_seq: k.log.nextSeq, uevent_seqnum: h.sysfs.uevents.seqnum },
    fuse: lh.session ? { ...lh.session.stats, open_files: lh.fuse?.openHandles ?? 0 } : null,
    events: { subscribers: lh.subscribers },
  };
}

async function sysfsGet(lh: LiveHost, _req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
  const p = checkSysfsPath(q.get('path'));
  const n = lookupNode(lh, p, false);
  const st = statNode(n);
  const mode = '0' + (st.mode & 0o7777).toString(8);
  if (n.type === 'link') return sendJson(res, 200, { path: p, type: 'link', target: linkText(n as KLink) });
  if (n.type === 'dir') return sendJson(res, 200, { path: p, type: 'dir', mode, entries: lh.host.sysfs.readdir(p) });
  const r = await lh.driver.spawn('apsim-http', lh.host.sysfs.read_gen(lh.host.k, p));
  if (!r.ok) throw new HttpError(errnoStatus(r.errno), `read ${p}: ${strerror(r.errno)}`, errnoBody(r.errno, p));
  sendJson(res, 200, { path: p, type: 'file', mode, data: r.data });
}

async function sysfsPut(lh: LiveHost, req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
  const p = checkSysfsPath(q.get('path'));
  let data: string;
  const ct = String(req.headers['content-type'] ?? '');
  if (ct.startsWith('text/plain')) data = (await readBody(req)).toString('latin1');
  else {
    const j = await readJson(req, ['data']);
    if (typeof j['data'] !== 'string') throw new HttpError(400, "field 'data' (string) is required, e.g. {\"data\": \"-5\\n\"}");
    data = j['data'];
  }
  const n = lookupNode(lh, p, true);
  if (n.type === 'dir') throw new HttpError(400, `${p} is a directory`, errnoBody(E.EISDIR, p));
  const r = await lh.driver.spawn('apsim-http', lh.host.sysfs.write_gen(lh.host.k, p, data));
  if (!r.ok) throw new HttpError(errnoStatus(r.errno), `write ${JSON.stringify(data)} to ${p}: ${strerror(r.errno)}`, errnoBody(r.errno, p));
  let seq: number | null = null;
  if (r.count > 0) seq = lh.journal({ kind: 'sysfs', path: (n as KAttr).path, data: data.slice(0, r.count), uid: 0, comm: 'apsim-http' });
  sendJson(res, 200, { path: p, count: r.count, journal_seq: seq });
}

async function hmcPost(lh: LiveHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const j = await readJson(req, ['op', 'id', 'on']);
  const op = j['op'];
  if (typeof op !== 'string' || !(HMC_OPS as readonly string[]).includes(op)) throw new HttpError(400, `field 'op' must be one of ${HMC_OPS.join(', ')}`);
  const id = j['id'];
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 255) throw new HttpError(400, "field 'id' must be an integer 0..255");
  const on = j['on'];
  const needsOn = op === 'card-config' || op === 'checkstop';
  if (needsOn && typeof on !== 'boolean') throw new HttpError(400, `field 'on' (boolean) is required for ${op}`);
  if (!needsOn && on !== undefined) throw new HttpError(400, `field 'on' is only valid for card-config and checkstop`);
  let changed: boolean;
  try {
    changed = applyHmc(lh.host.machine, op as HmcOpName, id, on as boolean | undefined);
  } catch (e) {
    if (e instanceof HmcError) throw new HttpError(422, e.message);
    throw e;
  }
  let seq: number | null = null;
  if (changed) seq = lh.journal({ kind: 'hmc', op: op as HmcOpName, id, ...(needsOn ? { on: on as boolean } : {}) });
  // The CHSC notification: the AP bus' config-change handling and rescan run now.
  lh.driver.kick();
  sendJson(res, 200, { op, id, ...(needsOn ? { on } : {}), changed, journal_seq: seq });
}

function intParam(q: URLSearchParams, name: string, dflt: number): number {
  const v = q.get(name);
  if (v === null) return dflt;
  if (!/^\d{1,15}$/.test(v)) throw new HttpError(400, `query parameter '${name}' must be a non-negative integer`);
  return Number(v);
}

function dmesgGet(lh: LiveHost, _req: IncomingMessage, res: ServerResponse, q: URLSearchParams): void {
  const since = intParam(q, 'since', 0);
  const format = q.get('format') ?? 'text';
  const recs = lh.host.k.log.records(since);
  switch (format) {
    case 'text':
      return sendText(res, 200, recs.map((r) => formatRecord(r)).join(''));
    case 'raw':
      return sendText(res, 200, recs.map((r) => formatRecord(r, { raw: true })).join(''));
    case 'kmsg':
      return sendText(res, 200, recs.map((r) => formatKmsg(r)).join(''));
    case 'json':
      return sendJson(res, 200, { next: lh.host.k.log.nextSeq, records: recs.map((r) => ({ seq: r.seq, ts: r.ts, level: r.level, text: r.text, line: formatRecord(r).trimEnd() })) });
    default:
      throw new HttpError(400, "query parameter 'format' must be one of text, raw, kmsg, json");
  }
}

const EVENT_TYPES = ['dmesg', 'uevent', 'journal', 'guest'] as const;

function eventsGet(lh: LiveHost, req: IncomingMessage, res: ServerResponse, q: URLSearchParams): void {
  const t = q.get('types');
  const types = new Set(t === null ? EVENT_TYPES : t.split(','));
  for (const x of types) if (!(EVENT_TYPES as readonly string[]).includes(x)) throw new HttpError(400, `unknown event type '${x}' (types: ${EVENT_TYPES.join(', ')})`);
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
  res.write(`: apsim event stream (${[...types].join(', ')})\n\n`);
  let id = 0;
  const send = (e: LiveEvent) => {
    if (!types.has(e.type)) return;
    res.write(`id: ${++id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
  };
  const unsub = lh.subscribe(send);
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  ping.unref();
  const done = () => {
    unsub();
    clearInterval(ping);
  };
  req.on('close', done);
  res.on('close', done);
}

function journalGet(lh: LiveHost, _req: IncomingMessage, res: ServerResponse, q: URLSearchParams): void {
  const since = intParam(q, 'since', 0);
  sendJson(res, 200, { last: lh.store.lastSeq, entries: lh.store.entries(since) });
}

/** One exported node: NDJSON lines, parents before children. */
export interface ExportEntry {
  readonly path: string;
  readonly type: 'dir' | 'file' | 'link';
  readonly mode: number;
  readonly data?: string;
  readonly target?: string;
  readonly errno?: number;
}

async function exportPost(lh: LiveHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const j = await readJson(req, ['under']);
  const under = j['under'] === undefined ? '/sys' : checkSysfsPath(typeof j['under'] === 'string' ? j['under'] : null);
  const start = lookupNode(lh, under, false);
  res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store' });
  const sysfs = lh.host.sysfs;
  const k = lh.host.k;
  const emit = async (n: KNode): Promise<void> => {
    const st = statNode(n);
    const mode = st.mode & 0o7777;
    let e: ExportEntry;
    if (n.type === 'dir') e = { path: n.path, type: 'dir', mode };
    else if (n.type === 'link') e = { path: n.path, type: 'link', mode, target: linkText(n as KLink) };
    else if ((mode & 0o444) === 0) e = { path: n.path, type: 'file', mode, data: '' };
    else {
      const r = await lh.driver.spawn('apsim-export', sysfs.read_gen(k, n.path));
      e = r.ok ? { path: n.path, type: 'file', mode, data: r.data } : { path: n.path, type: 'file', mode, data: '', errno: r.errno };
    }
    if (!res.write(JSON.stringify(e) + '\n')) await new Promise((r) => res.once('drain', r));
  };
  // The node list is taken at once: the tree may change while attributes are read.
  const nodes: KNode[] = [start];
  if (start.type === 'dir') for (const n of sysfs.walk(start as KDir)) nodes.push(n);
  for (const n of nodes) await emit(n);
  res.end();
}

// ------------------------------------------------------------ guests

/** Runs a guest operation, mapping GuestError to its HTTP status. */
async function guestOp<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof GuestError) throw new HttpError(e.status, e.message);
    throw e;
  }
}

function nameParam(q: URLSearchParams): string {
  const n = q.get('name');
  if (n === null || n === '') throw new HttpError(400, "missing query parameter 'name' (the guest's name)");
  return n;
}

/** A guest request body: {"name": string, "mdev": string (the mdev UUID)}. */
async function readNameMdev(req: IncomingMessage): Promise<{ name: string; mdev: string }> {
  const j = await readJson(req, ['name', 'mdev']);
  if (typeof j['name'] !== 'string') throw new HttpError(400, "field 'name' (string) is required");
  if (typeof j['mdev'] !== 'string') throw new HttpError(400, "field 'mdev' (string, the mdev UUID) is required");
  return { name: j['name'], mdev: j['mdev'] };
}

async function guestStart(lh: LiveHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { name, mdev } = await readNameMdev(req);
  await guestOp(() => lh.guests.start(name, mdev));
  const seq = lh.journal({ kind: 'guest', op: 'start', name, mdev });
  sendJson(res, 201, { ...lh.guests.summary(lh.guests.get(name)), journal_seq: seq });
}

async function guestStop(lh: LiveHost, _req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
  const name = nameParam(q);
  await guestOp(() => lh.guests.stop(name));
  const seq = lh.journal({ kind: 'guest', op: 'stop', name });
  sendJson(res, 200, { name, stopped: true, journal_seq: seq });
}

async function guestView(lh: LiveHost, _req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
  const name = nameParam(q);
  sendJson(res, 200, await guestOp(() => lh.guests.view(name)));
}

async function guestDeviceAdd(lh: LiveHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { name, mdev } = await readNameMdev(req);
  await guestOp(() => lh.guests.deviceAdd(name, mdev));
  const seq = lh.journal({ kind: 'guest', op: 'device-add', name, mdev });
  sendJson(res, 200, { ...lh.guests.summary(lh.guests.get(name)), journal_seq: seq });
}

async function guestDeviceDel(lh: LiveHost, _req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
  const name = nameParam(q);
  await guestOp(() => lh.guests.deviceDel(name));
  const seq = lh.journal({ kind: 'guest', op: 'device-del', name });
  sendJson(res, 200, { ...lh.guests.summary(lh.guests.get(name)), journal_seq: seq });
}

async function guestReset(lh: LiveHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const j = await readJson(req, ['name']);
  if (typeof j['name'] !== 'string') throw new HttpError(400, "field 'name' (string) is required");
  const name = j['name'];
  await guestOp(() => lh.guests.reset(name));
  const seq = lh.journal({ kind: 'guest', op: 'reset', name });
  sendJson(res, 200, { ...lh.guests.summary(lh.guests.get(name)), journal_seq: seq });
}
