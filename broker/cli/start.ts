// `jit start`: run the broker until SIGINT/SIGTERM (SIGHUP re-reads password files), saying where it listens and how to try it.
import type { Command } from 'commander';
import type { Config } from '../config.js';

/** Whether held statements are decided from a shell: review rules, an admin token, no Slack. */
const reviews = (c: Config) => Boolean(c.admin_token) && !c.slack && (c.default === 'review' || c.rules.some((r) => r.action === 'review'));

export function registerStartCommand(program: Command, config: () => Config): void {
  program
    .command('start')
    .description('run the broker: listeners for clients, the HTTP API, the dev issuer')
    .action(async () => {
      const { startBroker } = await import('../main.js'); // loaded on demand: `jit token` stays fast
      const broker = await startBroker(config());
      const { postgres, http } = broker.addresses;
      process.stderr.write(
        `jit-broker ready: postgres ${postgres ?? 'off'}, http ${http ?? 'off'}, targets ${[...broker.targets.keys()].join(', ')}\n` +
          (broker.issuer
            ? `  try: PGPASSWORD=$(npx jit token --build build-123) psql "host=${broker.config.listen.postgres?.host ?? '127.0.0.1'} port=${broker.config.listen.postgres?.port ?? 6432} dbname=${[...broker.targets.keys()][0] ?? 'app'} user=ci sslmode=require"\n`
            : '') +
          (reviews(broker.config) ? '  statements held for approval: npx jit approvals, then npx jit approve ID or npx jit deny ID --reason "…"\n' : ''),
      );
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) process.exit(1);
        stopping = true;
        process.stderr.write(`jit-broker: ${signal}, shutting down\n`);
        broker.close('the broker is shutting down').then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      // A broker at rest gives back the memory its start (or a burst) grew: a full collection once it goes quiet.
      void import('../memory.js').then((m) => m.startIdleReducer());
      // SIGHUP re-reads the upstream password files (upstream_password_file) instead of ending the process (Node's default).
      process.on('SIGHUP', () => {
        const changed = broker.reloadSecrets('SIGHUP');
        process.stderr.write(`jit-broker: SIGHUP, upstream password files re-read${changed.length ? ` (changed: ${changed.join(', ')})` : ''}\n`);
      });
    });
}
