// The Logins page: logins the broker turned away (why, what the client was told, what the token claimed —
// unverified), and, when the caller merges them in (broker/audit/logins.ts listLogins), the accepted ones with
// the session each opened. Newest first, as given.
import type { LoginEntry } from '../../audit/login-history.js';
import type { UiContext } from '../context.js';
import { type Html, html } from '../html.js';
import { badge, empty, filterForm, sessionLink, time } from './common.js';
import { clientText } from './sessions.js';

/**
 * One login as the page shows it: what a store RefusedLogin and a LoginEntry (GET /api/logins, `jit logins`) both
 * have; `outcome` and `sessionId` only on merged entries (absent: a refusal).
 */
export type LoginRow = Omit<LoginEntry, 'outcome' | 'sessionId'> & Partial<Pick<LoginEntry, 'outcome' | 'sessionId'>>;

export interface LoginFilters {
  /** A duration back from now (15m, 1h, 7d) or a date, as typed. */
  since?: string;
  /** Only refusals (the caller lists accordingly). */
  refused?: boolean;
}

function row(ctx: UiContext, l: LoginRow): Html {
  const accepted = l.outcome === 'accepted';
  const detail = accepted
    ? l.sessionId
      ? html`session ${sessionLink(ctx, l.sessionId)}`
      : ''
    : html`<code class="reason">${l.reason ?? ''}</code>${l.message ? html`<br><span class="message">${l.message}</span>` : ''}`;
  return html`<tr class="${accepted ? 'accepted' : 'refused'}">
<td>${time(l.at)}</td>
<td>${badge(accepted ? 'accepted' : 'refused')}</td>
<td>${l.engine}</td>
<td>${l.target ?? html`<span class="muted">none</span>`}</td>
<td>${clientText(l)}${l.dbUser ? html`<br><span class="muted">user ${l.dbUser}</span>` : ''}${l.tls ? '' : html`<br><span class="muted">no TLS</span>`}</td>
<td>${l.subject ?? ''}${l.issuer ? html`<br><span class="muted">${l.issuer}</span>` : ''}</td>
<td>${l.build ?? ''}</td>
<td>${detail}</td>
</tr>`;
}

/** The Logins page body. */
export function renderLogins(ctx: UiContext, data: { logins: readonly LoginRow[]; filters?: LoginFilters }): Html {
  const f = data.filters ?? {};
  const refusedOnly = f.refused ?? !data.logins.some((l) => l.outcome === 'accepted');
  const list = data.logins.length
    ? html`<div class="table-wrap" role="region" aria-labelledby="logins-h" tabindex="0">
<table class="list logins">
<thead><tr><th scope="col">At</th><th scope="col">Outcome</th><th scope="col">Engine</th><th scope="col">Target</th><th scope="col">Client</th><th scope="col">Subject</th><th scope="col">Build</th><th scope="col">Why / session</th></tr></thead>
<tbody>
${data.logins.map((l) => row(ctx, l))}
</tbody>
</table>
</div>
${data.logins.some((l) => l.outcome !== 'accepted' && l.subject) ? html`<p class="note">The subject and build of a refused login are what its token claimed, unverified.</p>` : ''}`
    : empty(f.since ? 'No login in that time.' : refusedOnly ? 'No login has been refused.' : 'No login recorded.');
  return html`<h1 id="logins-h">${refusedOnly ? 'Refused logins' : 'Logins'}</h1>
${filterForm(ctx, '/logins', 'lf', [
  { name: 'since', label: 'Since', value: f.since, placeholder: '1h, 7d or 2025-01-31T12:00:00Z' },
  { name: 'refused', label: 'Refused only', value: f.refused ? 'true' : undefined, type: 'checkbox' },
])}
<div data-live="logins" id="logins-live">
${list}
</div>`;
}
