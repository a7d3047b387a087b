// `jit logins`: who logged in and who was turned away, newest first, from the store. Refused logins show
// why (reason and what the client was told) and what their token claimed, unverified; accepted ones the
// session they opened. `--refused` lists refusals only; `--since 1h` (or a date) bounds them in time.
import { InvalidArgumentError, type Command } from 'commander';
import type { LoginEntry } from '../audit/login-history.js';
import { parseSince } from '../audit/since.js';
import type { Config } from '../config.js';
import { formatTable, when } from './format.js';

function since(v: string): Date {
  const d = parseSince(v);
  if (!d) throw new InvalidArgumentError(`'${v}' is neither a duration (90s, 15m, 1h, 7d) nor a date (2025-01-31T12:00:00Z)`);
  return d;
}

function detail(e: LoginEntry): string {
  if (e.outcome === 'accepted') return `session ${e.sessionId}`;
  return `${e.reason}: ${(e.message ?? '').replace(/\s+/g, ' ').slice(0, 100)}`;
}

export function registerLoginsCommand(program: Command, config: () => Config): void {
  program
    .command('logins')
    .description('logins, newest first: refused ones (why, what the token claimed) and accepted ones (their session)')
    .option('--refused', 'only refused logins')
    .option('--since <when>', 'only since then: a duration back from now (15m, 1h, 7d) or a date', since)
    .option('--limit <n>', 'at most n logins', (v) => Number.parseInt(v, 10), 50)
    .option('--json', 'machine-readable output')
    .action(async (o: { refused?: boolean; since?: Date; limit: number; json?: boolean }) => {
      const { openStore } = await import('../store/index.js');
      const { listLogins, loginToJson } = await import('../audit/login-history.js');
      const store = await openStore(config().store);
      try {
        const rows = await listLogins(store, { refused: o.refused, since: o.since, limit: o.limit });
        if (o.json) return void process.stdout.write(`${JSON.stringify(rows.map(loginToJson), null, 2)}\n`);
        if (!rows.length) return void process.stdout.write(o.refused ? 'no refused logins\n' : 'no logins\n');
        process.stdout.write(
          formatTable(
            ['AT', 'OUTCOME', 'ENGINE', 'TARGET', 'CLIENT', 'SUBJECT', 'BUILD', 'DETAIL'],
            rows.map((e) => [
              when(e.at),
              e.outcome,
              e.engine,
              e.target ?? '',
              `${e.clientAddress}${e.clientApplication ? ` (${e.clientApplication})` : ''}`,
              e.subject ?? '',
              e.build ?? '',
              detail(e),
            ]),
          ),
        );
        if (rows.some((e) => e.outcome === 'refused' && e.subject))
          process.stdout.write('(the subject and build of a refused login are what its token claimed, unverified)\n');
      } finally {
        await store.close();
      }
    });
}
