// After tsc: every file under broker/ and bot/ that is not TypeScript (the console's CSS and JS) is copied
// to the same place under dist/, so a module finds its assets beside it whether it runs from sources or dist.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (!e.name.endsWith('.ts')) {
      const to = join(root, 'dist', relative(root, p));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(p, to);
    }
  }
}

for (const d of ['broker', 'bot']) walk(join(root, d));
