#!/usr/bin/env node
// Entry point of the `jit` command. Runs the build (dist/) when it is current. In a source checkout whose
// TypeScript is newer than the build (or never built), runs the sources through tsx, a dev dependency, and
// says so once on stderr: a stale build would run yesterday's code. JIT_FROM_SOURCES=1 forces the sources.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'broker', 'cli', 'index.js');
const stamp = join(root, 'dist', 'build-info.json');

/** Whether any file under dir (TypeScript, or an asset the build copies) changed after time t (ms). */
function newerThan(dir, t) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() ? newerThan(p, t) : statSync(p).mtimeMs > t) return true;
  }
  return false;
}

function runSources() {
  // An installed package has no sources: the build is all there is.
  if (!existsSync(join(root, 'broker', 'cli', 'index.ts'))) return false;
  if (process.env.JIT_FROM_SOURCES === '1') return true;
  if (!existsSync(built) || !existsSync(stamp)) return 'dist/ is not built';
  const t = statSync(stamp).mtimeMs;
  return newerThan(join(root, 'broker'), t) || newerThan(join(root, 'bot'), t) ? 'the sources are newer than dist/' : false;
}

const why = runSources();
if (why) {
  if (typeof why === 'string') process.stderr.write(`jit: ${why}: running the TypeScript sources through tsx (npm run build compiles them)\n`);
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(root, 'broker', 'cli', 'index.ts')).href);
} else {
  await import(pathToFileURL(built).href);
}
