// The version and commit this broker runs: from dist/build-info.json in a build (written by
// scripts/build-info.mjs), else from package.json and `git rev-parse HEAD` when running the sources.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './paths.js';

export interface BuildInfo {
  version: string;
  /** The commit built from, or null when unknown (a tarball or an image built without JIT_COMMIT). */
  commit: string | null;
}

let cached: BuildInfo | undefined;

function readJson(file: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: PACKAGE_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null;
  }
}

export function buildInfo(): BuildInfo {
  if (cached) return cached;
  const fromSources = import.meta.url.endsWith('.ts');
  const built = fromSources ? null : readJson(join(PACKAGE_ROOT, 'dist', 'build-info.json'));
  const version = String(built?.version ?? readJson(join(PACKAGE_ROOT, 'package.json'))?.version ?? '0.0.0');
  const commit = built ? (typeof built.commit === 'string' ? built.commit : null) : (process.env.JIT_COMMIT ?? gitCommit());
  cached = { version, commit };
  return cached;
}

/** `0.2.0 (commit 1a2b3c4d5e6f)` or `0.2.0`: what `jit --version` prints after the program's name. */
export function versionLine(): string {
  const { version, commit } = buildInfo();
  return commit ? `${version} (commit ${commit.slice(0, 12)})` : version;
}
