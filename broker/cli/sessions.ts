// `jit sessions` and `jit session ID`: recorded sessions and one session's statements, from the store.
import { InvalidArgumentError, type Command } from 'commander';
import type { ApprovalRequest } from '../approvals/types.js';
import type { Config } from '../config.js';
import type { SessionSummary, StatementRecord, Store } from '../store/index.js';
import { formatTable, when, wrapText } from './format.js';

async function openStore(url: string): Promise<Store> {
  return (await import('../store/index.js')).openStore(url);
}

/** `approved by U123`, `denied by cli:bob (not now)`, `expired`, … */
function approvalCell(a: ApprovalRequest | undefined): string {
  if (!a) return '';
  return `${a.state}${a.decidedBy ? ` by ${a.decidedBy}` : ''}${a.reason && a.state !== 'approved' ? ` (${a.reason.slice(0, 60)})` : ''}`;
}

function sessionJson(s: SessionSummary) {
  return { ...s, dbRole: s.dbRole ?? null, startedAt: s.startedAt.toISOString(), endedAt: s.endedAt?.toISOString() ?? null };
}

export function registerSessionCommands(program: Command, config: () => Config): void {
  program
    .command('sessions')
    .description('list recorded sessions, newest first')
    .option('--build <id>', 'only this build')
    .option('--subject <sub>', 'only this subject')
    .option('--target <name>', 'only this target')
    .option('--open', 'only sessions still open')
    .option('--limit <n>', 'at most n sessions', (v) => Number.parseInt(v, 10), 50)
    .option('--json', 'machine-readable output')
    .action(async (o: { build?: string; subject?: string; target?: string; open?: boolean; limit: number; json?: boolean }) => {
      const store = await openStore(config().store);
      try {
        const rows = await store.listSessions({ build: o.build, subject: o.subject, target: o.target, open: o.open, limit: o.limit });
        if (o.json) return void process.stdout.write(`${JSON.stringify(rows.map(sessionJson), null, 2)}\n`);
        if (!rows.length) return void process.stdout.write('no sessions\n');
        process.stdout.write(
          formatTable(
            ['SESSION', 'SUBJECT', 'BUILD', 'TARGET', 'ENGINE', 'CLIENT', 'STARTED', 'ENDED', 'STATEMENTS'],
            rows.map((s) => [
              s.id,
              s.subject,
              s.build ?? '',
              s.target,
              s.engine,
              `${s.clientAddress}${s.clientApplication ? ` (${s.clientApplication})` : ''}`,
              when(s.startedAt),
              s.endedAt ? when(s.endedAt) : 'open',
              `${s.statementCount} (${s.denied} denied)`,
            ]),
          ),
        );
      } finally {
        await store.close();
      }
    });

  program
    .command('session')
    .description("one session's statements, in order, with decisions and outcomes")
    .argument('<id>', 'session id (a unique prefix is enough)')
    .option('--wide', 'each statement on one line, SQL and errors whole (default: wrapped, long ones cut)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, o: { wide?: boolean; json?: boolean }) => {
      const store = await openStore(config().store);
      try {
        const s = await store.getSession(id);
        if (!s) throw new InvalidArgumentError(`no session '${id}'`);
        const statements = await store.listStatements(s.id);
        // Who approved (or denied) each held statement, for the replay.
        const approvals = new Map<string, ApprovalRequest>();
        for (const id of new Set(statements.flatMap((x) => (x.approvalId ? [x.approvalId] : [])))) {
          const a = await store.getApproval(id);
          if (a) approvals.set(id, a);
        }
        const approval = (x: StatementRecord) => (x.approvalId ? approvals.get(x.approvalId) : undefined);
        if (o.json) {
          const { approvalToJson } = await import('../approvals/json.js');
          const st = statements.map((x: StatementRecord) => {
            const a = approval(x);
            return { ...x, startedAt: x.startedAt.toISOString(), ...(a ? { approval: approvalToJson(a) } : {}) };
          });
          return void process.stdout.write(`${JSON.stringify({ session: sessionJson(s), statements: st }, null, 2)}\n`);
        }
        // The policy version that decided each statement: in the header when one decided them all, else a column.
        const versions = new Set(statements.flatMap((x) => (typeof x.policyVersion === 'number' ? [x.policyVersion] : [])));
        const versioned = versions.size > 1;
        const policy = versions.size === 1 ? ` · policy version ${[...versions][0]}` : '';
        process.stdout.write(
          `session ${s.id}: ${s.subject} build=${s.build ?? '-'} target=${s.target}${s.dbRole ? ` role=${s.dbRole}` : ''} from ${s.clientAddress} ${when(s.startedAt)} → ${s.endedAt ? `${when(s.endedAt)} (${s.endReason})` : 'open'}${policy}\n\n`,
        );
        // Default: SQL wrapped at 80 columns and errors at 60, up to 4 lines each; --wide: one line, whole.
        let cut = false;
        const cell = (text: string, width: number) => {
          const flat = text.replace(/\s+/g, ' ');
          if (o.wide) return flat;
          const w = wrapText(flat, width, 4);
          cut ||= w.cut;
          return w.text;
        };
        process.stdout.write(
          formatTable(
            ['#', 'DECISION', 'RULE', 'KINDS', 'SQL', 'RESULT', 'MS', ...(approvals.size ? ['APPROVAL'] : []), ...(versioned ? ['POLICY'] : [])],
            statements.map((x) => [
              String(x.seq),
              x.decision,
              x.ruleId ?? '(default)',
              x.kinds.join(','),
              cell(x.sql, 80),
              x.error ? cell(`error: ${x.error}`, 60) : (x.tag ?? ''),
              x.durationMs === null ? '' : x.durationMs.toFixed(1),
              ...(approvals.size ? [approvalCell(approval(x))] : []),
              // The policy version that decided it (v3), when the statement records one.
              ...(versioned ? [typeof x.policyVersion === 'number' ? `v${x.policyVersion}` : ''] : []),
            ]),
          ),
        );
        if (cut) process.stdout.write('\n(long SQL or errors were cut, ending in …: --wide or --json shows them whole)\n');
      } finally {
        await store.close();
      }
    });
}
