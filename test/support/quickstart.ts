// The README's first command as a user runs it: `jit start` (bin/jit.js) in a fresh empty folder, on the
// embedded default with the listeners moved by environment, and `jit …` run in that folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { eventually, type RunResult } from './broker.js';

const BIN = resolve('bin/jit.js');

export interface Quickstart {
  /** The folder `jit start` runs in (its .jit/ data dir is below it). */
  dir: string;
  broker: ChildProcess;
  /** What the broker has written to stderr so far. */
  log(): string;
  /** `npx jit …` in the same folder, with the same environment. */
  jit(...args: string[]): Promise<RunResult>;
  /** SIGTERM the broker if it still runs, and remove the folder. */
  stop(): Promise<void>;
}

export async function startQuickstart(env: Record<string, string>, prefix: string): Promise<Quickstart> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const childEnv = { ...process.env, ...env };
  const broker = spawn(process.execPath, [BIN, 'start'], { cwd: dir, env: childEnv });
  let log = '';
  broker.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await eventually(async () => log.includes('jit-broker ready'), 60_000);
  return {
    dir,
    broker,
    log: () => log,
    jit: (...args) =>
      new Promise<RunResult>((done) => {
        const c = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: childEnv });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('exit', (code) => done({ code: code ?? 1, stdout, stderr }));
      }),
    async stop() {
      if (broker.exitCode === null) {
        broker.kill('SIGTERM');
        await new Promise((r) => broker.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
