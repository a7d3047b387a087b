// Where the package's own files are, the same whether this module runs from the sources (broker/paths.ts)
// or from the build (dist/broker/paths.js): the package root is the nearest folder above with a package.json.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`jit-broker: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export const PACKAGE_ROOT = packageRoot();
/** The `jit` command's entry (bin/jit.js): runs the build when it is current, else the sources. */
export const JIT_BIN = join(PACKAGE_ROOT, 'bin', 'jit.js');
export const MIGRATIONS_DIR = join(PACKAGE_ROOT, 'migrations');
