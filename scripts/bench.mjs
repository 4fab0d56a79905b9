#!/usr/bin/env node
// npm run bench -- <name> [args]: runs dist/bench/<name>.js. Each benchmark prints
// one JSON object as the last line of its output.
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const [name, ...args] = process.argv.slice(2);
const available = readdirSync('dist/bench').filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name>\navailable: ${available.join(', ')}`);
  process.exit(name ? 2 : 0);
}
const file = `dist/bench/${name}.js`;
if (!existsSync(file)) process.exit(2);
const r = spawnSync(process.execPath, ['--expose-gc', file, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
