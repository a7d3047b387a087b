// `jit approvals`, `jit approve`, `jit deny`: decide held statements through the running broker's
// HTTP API (api.ts: listen.http + admin_token of the config, or --url / JIT_ADMIN_TOKEN).
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { ApprovalJson } from '../approvals/json.js';
import type { Config } from '../config.js';
import { ApiError, call, target } from './api.js';
import { formatTable } from './format.js';

function expiresIn(iso: string, now = Date.now()): string {
  const s = Math.round((Date.parse(iso) - now) / 1000);
  if (s <= 0) return 'now';
  return `${s >= 60 ? `${Math.floor(s / 60)}m` : ''}${s % 60}s`;
}

const oneLine = (sql: string, n: number) => {
  const t = sql.replace(/\s+/g, ' ').trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
};

function describe(a: ApprovalJson): string {
  const who = a.decidedBy ? ` by ${a.decidedBy}` : '';
  const why = a.reason ? ` (${a.reason})` : '';
  if (a.state === 'pending') return `${a.id}: ${a.approvals.length} of ${a.settings.minApprovals} approvals so far, still pending`;
  return `${a.id}: ${a.state}${who}${why}`;
}

export function registerApprovalCommands(program: Command, config: () => Config): void {
  program
    .command('approvals')
    .description('list statements held for approval on the running broker (its HTTP API)')
    .option('--all', 'recent requests in every state, not only pending ones')
    .option('--url <url>', 'the broker HTTP API (default: listen.http of the config)')
    .option('--json', 'machine-readable output')
    .action(async (o: { all?: boolean; url?: string; json?: boolean }) => {
      const t = target(config(), o.url);
      const { data } = await call<{ approvals: ApprovalJson[] }>(t, 'GET', `/api/approvals?${o.all ? 'limit=50' : 'state=pending'}`);
      const rows = data.approvals;
      if (o.json) return void process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      if (!rows.length) return void process.stdout.write(o.all ? 'no approval requests\n' : 'no pending approvals\n');
      const now = Date.now();
      process.stdout.write(
        formatTable(
          ['ID', ...(o.all ? ['STATE'] : []), 'TARGET', 'SUBJECT', 'BUILD', 'KINDS', 'RULE', 'APPROVALS', 'EXPIRES IN', 'BLAST RADIUS', 'STATEMENT'],
          rows.map((a) => [
            a.id,
            ...(o.all ? [a.state] : []),
            a.target,
            a.subject,
            a.build ?? '',
            a.kinds.join(','),
            a.ruleId ?? '(default)',
            `${a.approvals.length}/${a.settings.minApprovals}`,
            a.state === 'pending' ? expiresIn(a.expiresAt, now) : '',
            a.estimate?.text ?? '',
            oneLine(a.sql, 80),
          ]),
        ),
      );
    });

  const by = (o: { by?: string }) => `cli:${o.by ?? userInfo().username}`;
  const decide = async (id: string, verb: 'approve' | 'deny', body: object, url?: string) => {
    const { status, data } = await call<{ ok: boolean; approval?: ApprovalJson; code?: string; message?: string }>(
      target(config(), url),
      'POST',
      `/api/approvals/${encodeURIComponent(id)}/${verb}`,
      body,
    );
    if (!data.ok) throw new ApiError(`${verb} ${id}: ${data.message ?? `HTTP ${status}`}${data.code ? ` [${data.code}]` : ''}`);
    process.stdout.write(`${describe(data.approval!)}\n`);
  };

  program
    .command('approve')
    .description('approve a held statement on the running broker')
    .argument('<id>', 'approval request id (jit approvals)')
    .option('--reason <text>', 'why (recorded with the decision)')
    .option('--by <name>', 'who approves, recorded as cli:<name> (default: your user name)')
    .option('--url <url>', 'the broker HTTP API (default: listen.http of the config)')
    .action(async (id: string, o: { reason?: string; by?: string; url?: string }) => {
      await decide(id, 'approve', { by: by(o), ...(o.reason ? { reason: o.reason } : {}) }, o.url);
    });

  program
    .command('deny')
    .description('deny a held statement on the running broker: its client gets the reason')
    .argument('<id>', 'approval request id (jit approvals)')
    .requiredOption('--reason <text>', 'why (shown to the client)')
    .option('--by <name>', 'who denies, recorded as cli:<name> (default: your user name)')
    .option('--url <url>', 'the broker HTTP API (default: listen.http of the config)')
    .action(async (id: string, o: { reason: string; by?: string; url?: string }) => {
      await decide(id, 'deny', { by: by(o), reason: o.reason }, o.url);
    });
}
