// `jit demo-db` (hidden): the built-in demo database, run by the broker as a child process (broker/demo/process.ts).
import type { Command } from 'commander';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo-db', { hidden: true })
    .description('run the built-in demo database (the broker starts it as a child process)')
    .requiredOption('--data-dir <dir>', 'where it keeps its data')
    .action(async (o: { dataDir: string }) => {
      const { startDemoDatabase } = await import('../demo/database.js');
      const demo = await startDemoDatabase({ dataDir: o.dataDir });
      process.stdout.write(`${JSON.stringify({ url: demo.url })}\n`);
      const stop = () => void demo.close().finally(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      // The broker's exit closes this pipe: never outlive it.
      process.stdin.on('end', stop).resume();
    });
}
