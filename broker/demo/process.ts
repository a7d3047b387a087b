// Runs the built-in demo database in a child process: PGlite executes queries synchronously, so in the
// broker's own process one slow demo query would stall every session and the HTTP listener with it.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { JIT_BIN } from '../paths.js';

export interface DemoProcess {
  url: string;
  close(): Promise<void>;
}

export function startDemoProcess(dataDir: string, log: (msg: string) => void): Promise<DemoProcess> {
  // stdin stays a pipe: the child exits when this process does, however it ends.
  const child = spawn(process.execPath, [JIT_BIN, 'demo-db', '--data-dir', dataDir], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let closing = false;
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      try {
        const { url } = JSON.parse(line) as { url: string };
        void exited.then((code) => {
          if (!closing) log(`the demo database exited unexpectedly (code ${code}): ${stderr.trim()}`);
        });
        resolve({
          url,
          async close() {
            closing = true;
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exited;
            clearTimeout(timer);
          },
        });
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`the demo database did not start: ${line}`));
      }
    });
    void exited.then((code) => reject(new Error(`the demo database did not start (exit ${code}): ${stderr.trim()}`)));
  });
}
