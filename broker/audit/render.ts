// `jit replay` as text: the replay events rendered one at a time (so that they can be paced), with each
// result's sample as an aligned table.
import type { ReplayEvent, StatementEvent } from './replay.js';
import type { ResultSample } from './types.js';

export interface RenderOptions {
  /** Widest a sample cell is shown (longer values end in `…`). Default 40. */
  maxCell?: number;
  /** Longest a statement's SQL is shown before it is cut. Default 2000. */
  maxSql?: number;
}

const when = (iso: string | null) => (iso ? iso.replace('T', ' ') : '');

/** `+1.234s` from the session's start. */
export function offset(ms: number): string {
  return `+${(ms / 1000).toFixed(3)}s`;
}

function ms(n: number): string {
  return n < 10 ? `${n.toFixed(2)} ms` : n < 1000 ? `${n.toFixed(1)} ms` : `${(n / 1000).toFixed(2)} s`;
}

function cell(v: string | null, max: number): string {
  if (v === null) return 'NULL';
  // One line per row: control characters are shown escaped.
  const flat = v.replace(/[\u0000-\u001f\u007f]/g, (c) =>
    c === '\n' ? '\\n' : c === '\t' ? '\\t' : c === '\r' ? '\\r' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  const chars = [...flat]; // by code point: a cut never splits a surrogate pair
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : flat;
}

const width = (s: string) => [...s].length;
const pad = (s: string, n: number) => s + ' '.repeat(Math.max(0, n - width(s)));

/** A sample as an aligned table, indented; says how many rows were left out. */
export function sampleTable(sample: ResultSample, totalRows: number | null, opts: RenderOptions = {}, indent = '    '): string {
  const max = Math.max(4, opts.maxCell ?? 40);
  const head = sample.columns.map((c) => cell(c.name, max));
  const body = sample.rows.map((r) => r.map((v) => cell(v, max)));
  const n = Math.max(head.length, ...body.map((r) => r.length));
  const widths = Array.from({ length: n }, (_, i) => Math.max(width(head[i] ?? ''), ...body.map((r) => width(r[i] ?? ''))));
  const line = (cells: string[]) => `${indent}${widths.map((w, i) => pad(cells[i] ?? '', w)).join(' | ')}`.trimEnd();
  const out = [line(head), `${indent}${widths.map((w) => '-'.repeat(w)).join('-+-')}`, ...body.map(line)];
  const more = totalRows !== null ? totalRows - sample.rows.length : 0;
  if (more > 0) out.push(`${indent}… ${more} more row${more === 1 ? '' : 's'}`);
  else if (sample.truncated) out.push(`${indent}… (cut at the sample bounds)`);
  return `${out.join('\n')}\n`;
}

function sqlBlock(sql: string, max: number): string {
  const text = sql.length > max ? `${sql.slice(0, max - 1)}…` : sql;
  return `${text
    .trim()
    .split('\n')
    .map((l) => `    ${l.trimEnd()}`)
    .join('\n')}\n`;
}

/** Renders events one by one; keeps what it needs across them (whether the last statement got an outcome). */
export class ReplayRenderer {
  private open: { st: StatementEvent; settled: boolean; approval: boolean } | null = null;

  constructor(private readonly opts: RenderOptions = {}) {}

  render(e: ReplayEvent): string {
    switch (e.type) {
      case 'session-start': {
        const id = e.identity;
        const c = e.client;
        const claims = Object.entries(id.claims).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
        const rows: [string, string][] = [
          ['subject', id.subject],
          ['issuer', id.issuer],
          ['build', id.build ?? '(none)'],
          ['claims', claims.length ? claims.join('  ') : '(none)'],
          ['actors', id.actors.length ? `${id.actors.join(' → ')} (outermost first)` : '(none: the token was used directly)'],
          ...(id.tokenId ? [['token id', id.tokenId] as [string, string]] : []),
          [
            'client',
            `${c.address.includes(':') ? `[${c.address}]` : c.address}:${c.port}  application ${c.application ?? '(none)'}  user ${c.user ?? '(none)'}  ${c.tls ? 'TLS' : 'no TLS'}`,
          ],
          ...(e.dbRole ? [['db role', e.dbRole] as [string, string]] : []),
        ];
        return `session ${e.session}  target ${e.target} (${e.engine})  started ${when(e.at)}\n${rows.map(([k, v]) => `  ${k.padEnd(9)}${v}`).join('\n')}\n`;
      }
      case 'statement': {
        const before = this.settle();
        this.open = { st: e, settled: e.decision === 'deny', approval: false };
        const head = `\n#${e.seq}  ${offset(e.offsetMs)}  ${e.decision}  ${e.ruleId ? `rule ${e.ruleId}` : 'default policy'}  ${e.kinds.join(',')}${e.protocol === 'simple' ? '' : `  (${e.protocol})`}\n`;
        const refused = e.decision === 'deny' ? `  refused: ${e.message ?? 'denied'}\n` : '';
        return before + head + sqlBlock(e.sql, this.opts.maxSql ?? 2000) + refused;
      }
      case 'approval': {
        const who = e.approvals.length > 1 ? e.approvals.map((a) => a.by).join(', ') : e.decidedBy;
        const why = e.reason ? ` (reason: ${e.reason})` : '';
        const at = e.decidedAt ? ` at ${when(e.decidedAt)}${e.offsetMs !== null ? ` [${offset(e.offsetMs)}]` : ''}` : '';
        const waited = e.decidedAt && !e.reused ? `, ${((Date.parse(e.decidedAt) - Date.parse(e.requestedAt)) / 1000).toFixed(1)}s after the request` : '';
        let text: string;
        if (e.reused) text = `approved earlier in this session (scope: session) by ${who ?? 'an approver'}${at}`;
        else if (e.state === 'approved') text = `approved by ${who ?? 'an approver'}${at}${waited}${why}`;
        else if (e.state === 'denied') text = `denied by ${who ?? 'an approver'}${at}${waited}${why}`;
        else if (e.state === 'pending') text = `pending (${e.approvals.length} of ${e.minApprovals} approvals)`;
        else text = `${e.state}${at}${e.reason ? `: ${e.reason}` : ''}`;
        if (this.open?.st.statementId === e.statementId) {
          this.open.approval = true;
          if (!(e.state === 'approved' || e.reused)) this.open.settled = true; // refused: no outcome expected
        }
        return `  approval ${e.approvalId}${e.ruleId ? ` (rule ${e.ruleId})` : ''}: ${text}\n`;
      }
      case 'result': {
        if (this.open?.st.statementId === e.statementId) this.open.settled = true;
        // A row count only where there is one: rows returned, or a tag that counts them (not `DROP TABLE`).
        const counted = e.rows !== null && !e.error && (e.rows > 0 || /\d$/.test(e.tag ?? ''));
        const rows = counted ? `  ${e.rows} row${e.rows === 1 ? '' : 's'}` : '';
        const outcome = e.error ? `error: ${e.error}${e.tag ? ` (after ${e.tag})` : ''}` : (e.tag ?? 'done');
        const head = `  → ${outcome}${rows}  ${ms(e.durationMs)}\n`;
        return head + (e.sample ? sampleTable(e.sample, e.rows, this.opts) : '');
      }
      case 'session-end':
        return `${this.settle()}\nsession ended ${when(e.at)} [${offset(e.offsetMs)}]: ${e.reason ?? '(no reason)'}; ${e.statements} statement${e.statements === 1 ? '' : 's'} (${e.allowed} allowed, ${e.reviewed} reviewed, ${e.denied} denied)\n`;
    }
  }

  /** After the last event: notes an outcome that never came. */
  end(): string {
    return this.settle();
  }

  private settle(): string {
    const o = this.open;
    this.open = null;
    if (!o || o.settled) return '';
    if (o.st.decision === 'review' && !o.approval) return '  (not run: no approval request was recorded for it)\n';
    return '  (no outcome recorded: it did not finish, or the client left first)\n';
  }
}
