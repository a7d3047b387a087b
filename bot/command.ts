// The /jit slash command: sessions of a build, one session's statements, pending approvals, the active policy, help.
// ack() at once, then answer through the response_url, ephemerally, at most `limit` rows.
import type { App, RespondArguments, types } from '@slack/bolt';
import { groupApprovers } from '../broker/approvals/approvers.js';
import type { ApprovalRequest } from '../broker/approvals/types.js';
import type { SessionSummary, StatementRecord } from '../broker/store/index.js';
import { clip, code, count, duration, esc, slackDate, who } from './format.js';
import type { Directory } from './people.js';
import type { ApprovalsPort, BotLog, RevocationsPort, StorePort } from './ports.js';

type KnownBlock = types.KnownBlock;

export interface CommandDeps {
  approvals: ApprovalsPort;
  store: StorePort;
  log: BotLog;
  /** Rows shown per reply (default 20). */
  limit: number;
  /** The command as registered in Slack (default `/jit`). */
  name: string;
  /** `/jit revoke`: absent when the broker has no revocation service. */
  revocations?: RevocationsPort;
  /** Resolves the caller's e-mail and user-group membership for the revokers check. */
  directory?: Pick<Directory, 'email' | 'groupMembers'>;
}

const DECISION_ICON: Record<string, string> = { allow: ':large_green_circle:', deny: ':red_circle:', review: ':large_yellow_circle:' };

/** Section blocks of lines, each under Slack's 3000-character limit. */
function sections(lines: string[]): KnownBlock[] {
  const out: KnownBlock[] = [];
  let cur = '';
  for (const line of lines) {
    if (cur && cur.length + line.length + 1 > 2900) {
      out.push({ type: 'section', text: { type: 'mrkdwn', text: cur } });
      cur = '';
    }
    cur = cur ? `${cur}\n${line}` : line;
  }
  if (cur) out.push({ type: 'section', text: { type: 'mrkdwn', text: cur } });
  return out;
}

function reply(title: string, lines: string[], more: string | null): RespondArguments {
  const blocks: KnownBlock[] = [{ type: 'section', text: { type: 'mrkdwn', text: title } }, ...sections(lines)];
  if (more) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: more }] });
  return { response_type: 'ephemeral', text: title.replace(/[*`]/g, ''), blocks };
}

function text(t: string): RespondArguments {
  return { response_type: 'ephemeral', text: t };
}

function sessionLine(s: SessionSummary): string {
  const ran = s.endedAt ? duration(s.endedAt.getTime() - s.startedAt.getTime()) : 'still open';
  // The whole delegation chain: which agent, under which bot, for which pipeline identity.
  const who = s.actors.length ? `${s.actors.map((a) => code(a, 40)).join(' under ')} for ${code(s.subject, 60)}` : code(s.subject, 60);
  return (
    `• \`${esc(s.id)}\` ${code(s.target, 40)} ${who} · ${slackDate(s.startedAt, '{date_short} {time_secs}')} · ${ran} · ` +
    `${count(s.statementCount, 'statement')} (${s.allowed} allowed / ${s.denied} denied / ${s.reviewed} reviewed)`
  );
}

/** How the review of a held statement went: `approved by @alice`, `denied by @bob: reason`, `expired`. */
function reviewNote(r: ApprovalRequest | null | undefined): string {
  if (!r) return '';
  if (r.state === 'pending') return ' · waiting for approval';
  const by = r.state === 'approved' && r.approvals.length ? r.approvals.map((a) => who(a.by)).join(', ') : r.decidedBy ? who(r.decidedBy) : null;
  return ` · ${r.state}${by ? ` by ${by}` : ''}${r.reason ? `: ${esc(clip(r.reason, 80))}` : ''}`;
}

function statementLine(st: StatementRecord, review?: ApprovalRequest | null): string {
  const icon = DECISION_ICON[st.decision] ?? '';
  const result = st.error
    ? `error: ${esc(clip(st.error, 80))}`
    : st.durationMs === null
      ? 'did not finish'
      : `${duration(st.durationMs)}${st.rows !== null ? `, ${count(st.rows, 'row')}` : ''}`;
  return `${st.seq}. ${icon} *${st.decision}* ${esc(st.kinds.join(', '))}${st.ruleId ? ` (rule ${code(st.ruleId, 40)})` : ''}${reviewNote(review)} · ${code(st.sql, 160)} · ${result}`;
}

/** One policy rule, link-free: `• no-reads: deny read on app · builds ci-*`. */
function ruleLine(rule: unknown): string {
  const r = (typeof rule === 'object' && rule !== null ? rule : {}) as Record<string, unknown>;
  const list = (k: string) => (Array.isArray(r[k]) ? (r[k] as unknown[]).map(String).join(', ') : null);
  const parts = [`*${esc(String(r['action'] ?? '?'))}* ${esc(list('kinds') ?? 'any kind')}`];
  for (const [k, label] of [
    ['targets', 'on'],
    ['tables', 'tables'],
    ['builds', 'builds'],
    ['subjects', 'subjects'],
    ['actors', 'actors'],
    ['approvers', 'approvers'],
  ] as const) {
    const v = list(k);
    if (v) parts.push(`${label} ${esc(clip(v, 120))}`);
  }
  return `• ${code(String(r['id'] ?? '?'), 60)}: ${parts.join(' · ')}`;
}

function pendingLine(r: ApprovalRequest): string {
  const approvals = r.settings.minApprovals > 1 ? ` · ${r.approvals.length}/${r.settings.minApprovals} approvals` : '';
  return `• \`${esc(r.id)}\` ${esc(r.kinds.join(', '))} on ${code(r.target, 40)} for ${code(r.subject, 60)} · ${code(r.sql, 100)} · expires ${slackDate(r.expiresAt, '{time}')}${approvals}`;
}

function help(name: string): RespondArguments {
  return text(
    [
      `*${name} sessions <build>* — the sessions of a build: target, identity, start, duration, statements and decisions`,
      `*${name} session <id>* — one session's statements with their decisions (a unique id prefix is enough)`,
      `*${name} pending* — statements waiting for approval`,
      `*${name} policy* — the active policy version: who applied it, when, and its rules`,
      `*${name} revoke <build> <reason>* — refuse every token of a build from now on and end its open sessions (revokers only)`,
      `*${name} help* — this text`,
    ].join('\n'),
  );
}

/** What the user typed after the command → the reply. Exported for tests of the wording. */
export async function answer(d: CommandDeps, input: string, userId = ''): Promise<RespondArguments> {
  const [verb = '', ...rest] = input.trim().split(/\s+/).filter(Boolean);
  const arg = rest.join(' ');
  switch (verb.toLowerCase()) {
    case 'sessions': {
      if (!arg) return text(`Which build? \`${d.name} sessions <build>\``);
      const all = await d.store.listSessions({ build: arg });
      if (all.length === 0) return text(`No sessions for build ${code(arg, 200)}.`);
      const shown = all.slice(0, d.limit);
      const more =
        all.length > shown.length ? `…and ${all.length - shown.length} more (newest first). All of them: \`jit sessions --build ${esc(arg)}\`` : null;
      return reply(`*${count(all.length, 'session')}* for build ${code(arg, 200)}:`, shown.map(sessionLine), more);
    }
    case 'session': {
      if (!arg) return text(`Which session? \`${d.name} session <id>\``);
      let s: SessionSummary | null;
      try {
        s = await d.store.getSession(arg);
      } catch (e) {
        if ((e as Error).name === 'AmbiguousSessionIdError') return text(esc((e as Error).message));
        throw e;
      }
      if (!s) return text(`No session ${code(arg, 60)}.`);
      const statements = await d.store.listStatements(s.id);
      const shown = statements.slice(0, d.limit);
      const reviews = await Promise.all(
        shown.map((st) => (st.approvalId ? (async (id: string) => d.approvals.get(id))(st.approvalId).catch(() => null) : null)),
      );
      const more = statements.length > shown.length ? `…and ${statements.length - shown.length} more. All of them: \`jit replay ${esc(s.id)}\`` : null;
      const title = `${sessionLine(s).slice(2)}${s.endReason ? `\nEnded: ${esc(clip(s.endReason, 200))}` : ''}`;
      return reply(title, shown.length ? shown.map((st, i) => statementLine(st, reviews[i])) : ['_no statements_'], more);
    }
    case 'pending': {
      const pending = await d.approvals.pending();
      if (pending.length === 0) return text('No statements are waiting for approval.');
      const shown = pending.slice(0, d.limit);
      const more = pending.length > shown.length ? `…and ${pending.length - shown.length} more.` : null;
      return reply(`*${count(pending.length, 'statement')}* waiting for approval:`, shown.map(pendingLine), more);
    }
    case 'policy': {
      const v = await d.store.getPolicyVersion?.();
      if (!v) return text('No policy version is stored yet: the broker takes its config rules as version 1 when it starts.');
      const title =
        `*Policy version ${v.version}* (active) · applied by ${v.author.startsWith('cli:') || v.author.startsWith('api:') || v.author === 'config' ? code(v.author, 60) : who(v.author)} ` +
        `${slackDate(v.appliedAt, '{date_short} {time}')}${v.message ? `\n${esc(clip(v.message, 300))}` : ''}`;
      const rules = v.rules.rules.map((r) => ruleLine(r));
      const shown = rules.slice(0, d.limit);
      const more = rules.length > shown.length ? `…and ${rules.length - shown.length} more rules. All of them: \`jit policy show\`` : null;
      return reply(title, [...shown, `Otherwise (no rule matches): *${esc(v.rules.default)}*`], more);
    }
    case 'revoke': {
      const [build, ...why] = rest;
      if (!d.revocations) return text('Revocation is not available on this broker.');
      if (!build || why.length === 0) return text(`Which build, and why? \`${d.name} revoke <build> <reason>\``);
      const email = d.directory ? await d.directory.email(userId) : null;
      const groups: string[] = [];
      if (d.directory) {
        for (const ref of groupApprovers(d.revocations.revokers)) if ((await d.directory.groupMembers(ref))?.has(userId)) groups.push(ref);
      }
      const r = await d.revocations.revoke({ build, reason: why.join(' '), by: userId, email, groups });
      if (!r.ok) return text(esc(r.message));
      return text(`Revoked build ${code(build, 200)}: its tokens are refused from now on; ${count(r.ended.length, 'open session')} ended.`);
    }
    case '':
    case 'help':
      return help(d.name);
    default:
      return { ...help(d.name), text: `Unknown subcommand ${code(verb, 40)}.\n${help(d.name).text ?? ''}` };
  }
}

export function registerCommand(app: App, d: CommandDeps): void {
  app.command(d.name, async ({ ack, command, respond }) => {
    await ack();
    let out: RespondArguments;
    try {
      out = await answer(d, command.text, command.user_id);
    } catch (e) {
      d.log.error({ err: e, text: command.text }, 'slack: /jit failed');
      out = text(`Sorry, that failed: ${esc((e as Error).message)}`);
    }
    await respond(out);
  });
}
