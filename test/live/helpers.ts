// Helpers for the live-host tests: start `apsim up` on a temp root as a child
// process, run shell commands against the FUSE mount, always unmount afterwards.
// Nothing here waits a fixed time: every wait polls a condition with a generous limit.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request as httpRequest } from 'node:http';

export const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** Why the live tests cannot run here, or null. */
export function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'live tests need root (FUSE mount with allow_other)';
  if (!existsSync('/dev/fuse')) return 'live tests need /dev/fuse';
  return null;
}

export interface ShResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a shell command (sh -c) asynchronously. */
export function sh(cmd: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; shell?: string } = {}): Promise<ShResult> {
  return new Promise((res) => {
    execFile(opts.shell ?? 'sh', ['-c', cmd], { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

/** Runs the apsim CLI. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ShResult> {
  return new Promise((res) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

export async function waitFor<T>(what: string, f: () => T | null | undefined | false | Promise<T | null | undefined | false>, limitMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path);
}

/** A running `apsim up` child. */
export class Daemon {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  exitCode: number | null = null;
  readonly exited: Promise<number>;
  port = 0;

  constructor(
    readonly root: string,
    args: string[] = [],
  ) {
    this.child = spawn(process.execPath, [MAIN, 'up', '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((r) => this.child.on('exit', (code, sig) => r((this.exitCode = code ?? (sig ? 128 : 1)))));
  }

  get mnt(): string {
    return join(this.root, 'sys');
  }

  get pid(): number {
    return this.child.pid!;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Waits for the ready line; throws with the daemon's output if it exits first. */
  async ready(): Promise<this> {
    await waitFor(`apsim up on ${this.root}`, () => {
      if (this.exitCode !== null) throw new Error(`apsim up exited with ${this.exitCode}:\n${this.stdout}${this.stderr}`);
      return /API http:\/\/127\.0\.0\.1:(\d+)/.exec(this.stdout);
    }).then((m) => (this.port = Number(m[1])));
    return this;
  }

  /** SIGTERM and wait for the exit. */
  async stop(): Promise<number> {
    if (this.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  async kill9(): Promise<void> {
    if (this.exitCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** One request on a fresh connection (no keep-alive: the test process may block for a while). */
  http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string }> {
    const h: Record<string, string> = { ...headers };
    let b: string | undefined;
    if (body !== undefined) {
      b = typeof body === 'string' ? body : JSON.stringify(body);
      h['content-type'] ??= 'application/json';
      h['content-length'] = String(Buffer.byteLength(b));
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: this.port, method, path, headers: h, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let json: any = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(b);
    });
  }
}

/** A temp root; cleanup() unmounts anything left (also after failures) and removes it. */
export function tempRoot(tag: string): { root: string; cleanup: () => Promise<void> } {
  const root = mkdtempSync(join(tmpdir(), `apsim-live-${tag}-`));
  return {
    root,
    cleanup: async () => {
      const mp = join(root, 'sys');
      if (isMounted(mp)) await sh(`umount ${JSON.stringify(mp)} 2>/dev/null || umount -l ${JSON.stringify(mp)}`);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
