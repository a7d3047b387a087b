// One recorded session: who connected (identity, delegation chain) and from where, then every statement with
// its decision, rule, policy version, approval, timing, outcome and the (masked) sample of what the client saw;
// and a player that steps through the statements at their own pace (broker/ui/assets/app.js drives it).
import type { ApprovalRequest } from '../../approvals/types.js';
import type { SessionSummary, StatementRecord } from '../../store/types.js';
import type { ResultSample } from '../../types.js';
import type { UiContext } from '../context.js';
import { type Html, html } from '../html.js';
import { actorsChain, badge, claimsList, duration, facts, offset, reviewLink, sampleTable, span, sqlCell, time } from './common.js';
import { clientText } from './sessions.js';

/** The approval that held a statement (or the session-scope approval it ran under), if any. */
function approvalOf(st: StatementRecord, byId: ReadonlyMap<string, ApprovalRequest>, approvals: readonly ApprovalRequest[]): ApprovalRequest | null {
  if (st.approvalId) return byId.get(st.approvalId) ?? null;
  return approvals.find((a) => a.statementId === st.id) ?? null;
}

function approvalCell(ctx: UiContext, st: StatementRecord, a: ApprovalRequest | null): Html | string {
  if (!a) return st.approvalId ? html`<span class="muted">${st.approvalId}</span>` : '';
  const reused = a.statementId !== null && a.statementId !== st.id;
  const by = a.approvals.length > 1 ? a.approvals.map((x) => x.by).join(', ') : (a.decidedBy ?? a.approvals[0]?.by ?? null);
  return html`${reviewLink(ctx, a.id)}<br>${badge(a.state)}${by ? html` <span class="muted">by ${by}</span>` : ''}${
    reused ? html`<br><span class="muted">approved earlier in this session</span>` : ''
  }${a.reason ? html`<br><span class="reason">${a.reason}</span>` : ''}`;
}

function outcome(st: StatementRecord): Html | string {
  if (st.error) return html`<span class="error">error: ${st.error}</span>`;
  if (st.tag) return st.tag;
  if (st.decision === 'deny') return html`<span class="muted">not run</span>`;
  return html`<span class="muted">no outcome recorded</span>`;
}

const COLUMNS = ['#', 'Offset', 'Decision', 'Rule', 'Policy', 'Approval', 'Duration', 'Rows', 'Kinds', 'Statement'] as const;

function statementRows(ctx: UiContext, session: SessionSummary, st: StatementRecord, a: ApprovalRequest | null, sample: ResultSample | undefined): Html {
  const off = st.startedAt.getTime() - session.startedAt.getTime();
  const refused = st.decision !== 'allow' && st.message ? html`<br><span class="reason">${st.message}</span>` : '';
  return html`<tr id="st-${st.seq}" class="decision-${st.decision}">
<th scope="row">${st.seq}</th>
<td class="num">${offset(off)}</td>
<td>${badge(st.decision)}</td>
<td>${st.ruleId ?? html`<span class="muted">default</span>`}</td>
<td class="num">${st.policyVersion != null ? html`<a href="${ctx.base}/policy/${st.policyVersion}">v${st.policyVersion}</a>` : ''}</td>
<td>${approvalCell(ctx, st, a)}</td>
<td class="num">${duration(st.durationMs)}</td>
<td class="num">${st.rows ?? ''}<br><span class="muted">${outcome(st)}</span></td>
<td>${st.kinds.join(', ')}${st.protocol !== 'simple' ? html`<br><span class="muted">(${st.protocol})</span>` : ''}</td>
<td class="sql-cell">${sqlCell(st.sql)}${refused}</td>
</tr>${sample ? html`<tr class="sample-row"><td></td><td colspan="${COLUMNS.length - 1}">${sampleTable(sample, st.rows, `Result of #${st.seq} as the client saw it`)}</td></tr>` : ''}`;
}

function player(session: SessionSummary, statements: readonly StatementRecord[]): Html {
  if (!statements.length) return html``;
  const items = statements.map((st) => {
    const off = Math.max(0, st.startedAt.getTime() - session.startedAt.getTime());
    const preview = st.sql.replace(/\s+/g, ' ').trim();
    return html`<li data-offset-ms="${off}" data-seq="${st.seq}"><a href="#st-${st.seq}">#${st.seq}</a> <span class="num">${offset(off)}</span> ${badge(st.decision)} <code>${
      preview.length > 100 ? `${preview.slice(0, 99)}…` : preview
    }</code></li>`;
  });
  return html`<section data-player aria-labelledby="player-h" class="player">
<h2 id="player-h">Replay</h2>
<div class="controls" data-player-controls hidden>
<button type="button" data-action="play">Play</button>
<button type="button" data-action="pause" disabled>Pause</button>
<button type="button" data-action="step">Step</button>
<label for="player-speed">Speed</label>
<select id="player-speed" data-speed>
<option value="1">1x</option>
<option value="2">2x</option>
<option value="10">10x</option>
</select>
</div>
<p class="status" role="status" aria-live="polite" data-status>${statements.length} statement${statements.length === 1 ? '' : 's'} over ${span(
    Math.max(0, statements[statements.length - 1]!.startedAt.getTime() - session.startedAt.getTime()),
  )}.</p>
<ol class="timeline">
${items}
</ol>
</section>`;
}

/**
 * The page body for one session. `samples`: the result samples by statement id (Store.listSamples); statements
 * without one show none.
 */
export function renderSession(
  ctx: UiContext,
  data: { session: SessionSummary; statements: StatementRecord[]; approvals: ApprovalRequest[]; samples?: ReadonlyMap<number, ResultSample> },
): Html {
  const s = data.session;
  const byId = new Map(data.approvals.map((a) => [a.id, a]));
  const statements = [...data.statements].sort((a, b) => a.seq - b.seq);
  const table = statements.length
    ? html`<div class="table-wrap" role="region" aria-labelledby="statements-h" tabindex="0">
<table class="list statements">
<thead><tr>${COLUMNS.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
<tbody>
${statements.map((st) => statementRows(ctx, s, st, approvalOf(st, byId, data.approvals), data.samples?.get(st.id)))}
</tbody>
</table>
</div>`
    : html`<p class="empty">No statement was recorded in this session.</p>`;
  const ended = s.endedAt
    ? html`${time(s.endedAt)} <span class="muted">(after ${span(s.endedAt.getTime() - s.startedAt.getTime())})</span>${s.endReason ? html`: ${s.endReason}` : ''}`
    : badge('open');
  return html`<p class="crumbs"><a href="${ctx.base}/sessions">Sessions</a> › ${s.id}</p>
<h1>Session ${s.id}</h1>
<div data-live="session" id="session-live">
<div class="columns">
<section aria-labelledby="identity-h"><h2 id="identity-h">Identity</h2>
${facts([
  ['Subject', s.subject],
  ['Issuer', s.issuer],
  ['Build', s.build ?? html`<span class="muted">none</span>`],
  ['Token id', s.tokenId],
  ['Delegation chain', actorsChain(s.actors, s.subject)],
  ['Claims', claimsList(s.claims)],
])}
</section>
<section aria-labelledby="client-h"><h2 id="client-h">Connection</h2>
${facts([
  ['Target', html`${s.target} <span class="muted">(${s.engine})</span>`],
  ['Client', clientText(s)],
  ['TLS', s.tls ? 'yes' : html`<strong>no</strong>`],
  ['Database role', s.dbUser],
  ['Broker', s.replicaId ?? null],
  ['Started', time(s.startedAt)],
  ['Ended', ended],
  ['Statements', html`${s.statementCount} <span class="muted">(${s.allowed} allowed, ${s.reviewed} reviewed, ${s.denied} denied)</span>`],
])}
</section>
</div>
<h2 id="statements-h">Statements</h2>
${table}
</div>
${player(s, statements)}`;
}
