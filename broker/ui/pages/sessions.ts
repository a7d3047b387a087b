// The Sessions page: recorded sessions, newest first, with who (subject, build), where (target, engine, client),
// when, and how many statements (and how many of them were denied).
import type { SessionSummary } from '../../store/types.js';
import type { UiContext } from '../context.js';
import { type Html, html } from '../html.js';
import { badge, empty, filterForm, sessionLink, span, time } from './common.js';

export interface SessionFilters {
  build?: string;
  subject?: string;
  target?: string;
  /** A duration back from now (15m, 1h, 7d) or a date, as typed: the caller parses it for the store. */
  since?: string;
  open?: boolean;
}

/** The client: address:port and application. */
export function clientText(s: Pick<SessionSummary, 'clientAddress' | 'clientPort' | 'clientApplication'>): Html {
  const addr = s.clientAddress.includes(':') ? `[${s.clientAddress}]` : s.clientAddress;
  return html`<span class="addr">${addr}:${s.clientPort}</span>${s.clientApplication ? html`<br><span class="muted">${s.clientApplication}</span>` : ''}`;
}

function row(ctx: UiContext, s: SessionSummary): Html {
  const ended = s.endedAt
    ? html`${time(s.endedAt)}<br><span class="muted">after ${span(s.endedAt.getTime() - s.startedAt.getTime())}${s.endReason ? html`: ${s.endReason}` : ''}</span>`
    : badge('open');
  return html`<tr class="${s.endedAt ? 'ended' : 'open'}">
<th scope="row">${sessionLink(ctx, s.id)}</th>
<td>${s.subject}${s.actors.length ? html`<br><span class="muted">via ${s.actors.join(' → ')}</span>` : ''}</td>
<td>${s.build ?? ''}</td>
<td>${s.target}</td>
<td>${s.engine}</td>
<td>${clientText(s)}</td>
<td>${time(s.startedAt)}</td>
<td>${ended}</td>
<td class="num">${s.statementCount}${s.denied ? html` <span class="denied">(${s.denied} denied)</span>` : ''}${
    s.reviewed ? html`<br><span class="muted">${s.reviewed} reviewed</span>` : ''
  }</td>
</tr>`;
}

/** The Sessions page body. */
export function renderSessions(ctx: UiContext, data: { sessions: SessionSummary[]; filters: SessionFilters }): Html {
  const f = data.filters;
  const filtered = Boolean(f.build || f.subject || f.target || f.since || f.open);
  const list = data.sessions.length
    ? html`<div class="table-wrap" role="region" aria-labelledby="sessions-h" tabindex="0">
<table class="list sessions">
<thead><tr><th scope="col">Session</th><th scope="col">Subject</th><th scope="col">Build</th><th scope="col">Target</th><th scope="col">Engine</th><th scope="col">Client</th><th scope="col">Started</th><th scope="col">Ended</th><th scope="col">Statements</th></tr></thead>
<tbody>
${data.sessions.map((s) => row(ctx, s))}
</tbody>
</table>
</div>`
    : empty(filtered ? 'No session matches the filters.' : 'No session has been recorded yet.');
  return html`<h1 id="sessions-h">Sessions</h1>
${filterForm(ctx, '/sessions', 'sf', [
  { name: 'build', label: 'Build', value: f.build },
  { name: 'subject', label: 'Subject', value: f.subject },
  { name: 'target', label: 'Target', value: f.target },
  { name: 'since', label: 'Since', value: f.since, placeholder: '1h, 7d or 2025-01-31T12:00:00Z' },
  { name: 'open', label: 'Open sessions only', value: f.open ? 'true' : undefined, type: 'checkbox' },
])}
<div data-live="sessions" id="sessions-live">
<p class="count">${data.sessions.length} session${data.sessions.length === 1 ? '' : 's'}, newest first</p>
${list}
</div>`;
}
