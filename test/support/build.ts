// Vitest global setup: compile the broker (npm run build, incremental: ~4 s when nothing changed) before any
// test runs, so the `jit` processes tests start (bin/jit.js) run the build of these very sources.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: ['ignore', 'inherit', 'inherit'] });
}
