// `apsim export DIR`: writes the daemon's sysfs tree as a plain directory in the
// kernel's layout (DIR/sys/...): directories, files with their contents and modes,
// symlinks as relative symlinks. s390-tools read it with SYSFS_ROOT=DIR.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExportEntry } from './http.js';

export interface ExportResult {
  dirs: number;
  files: number;
  links: number;
  unreadable: number;
}

export class ExportWriter {
  readonly result: ExportResult = { dirs: 0, files: 0, links: 0, unreadable: 0 };
  private readonly root: string;

  constructor(dir: string) {
    this.root = path.resolve(dir);
    fs.mkdirSync(this.root, { recursive: true });
    const sys = path.join(this.root, 'sys');
    if (fs.existsSync(sys) && fs.readdirSync(sys).length > 0) throw new Error(`${sys} exists and is not empty; export into a new directory`);
  }

  /** Where an entry goes; refuses anything that would leave DIR. */
  private target(p: string): string {
    if ((p !== '/sys' && !p.startsWith('/sys/')) || p.split('/').some((c) => c === '..' || c === '.') || p.includes('\0')) {
      throw new Error(`refusing exported path ${JSON.stringify(p)}`);
    }
    return path.join(this.root, p);
  }

  add(e: ExportEntry): void {
    const t = this.target(e.path);
    switch (e.type) {
      case 'dir':
        fs.mkdirSync(t, { recursive: true, mode: e.mode });
        this.result.dirs++;
        return;
      case 'file':
        fs.writeFileSync(t, e.data ?? '', { mode: e.mode });
        fs.chmodSync(t, e.mode);
        if (e.errno !== undefined) this.result.unreadable++;
        this.result.files++;
        return;
      case 'link': {
        const tgt = e.target ?? '';
        const resolved = path.resolve(path.dirname(t), tgt);
        if (!resolved.startsWith(this.root + path.sep)) throw new Error(`refusing symlink ${e.path} -> ${tgt} (points outside ${this.root})`);
        fs.symlinkSync(tgt, t);
        this.result.links++;
        return;
      }
    }
  }
}
