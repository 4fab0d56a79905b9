// Daemon discovery: ROOT/run.json names the running daemon (pid, address, port,
// token). The CLI finds ROOT from --root, then $APSIM_ROOT, then ~/.apsim.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface RunInfo {
  readonly pid: number;
  readonly address: string;
  readonly port: number;
  /** Bearer token required by the API (only when listening beyond loopback). */
  readonly token: string | null;
  readonly mountpoint: string;
  readonly state: string;
  readonly profile: string;
  readonly started: string;
}

export function defaultRoot(): string {
  return process.env['APSIM_ROOT'] || path.join(os.homedir(), '.apsim');
}

export function runInfoPath(root: string): string {
  return path.join(root, 'run.json');
}

export function readRunInfo(root: string): RunInfo | null {
  let text: string;
  try {
    text = fs.readFileSync(runInfoPath(root), 'utf8');
  } catch {
    return null;
  }
  try {
    const j = JSON.parse(text) as RunInfo;
    if (typeof j.pid !== 'number' || typeof j.port !== 'number') return null;
    return j;
  } catch {
    return null;
  }
}

/** Whether a process with this pid exists (kill -0). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
