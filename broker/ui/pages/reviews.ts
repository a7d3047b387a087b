// The Reviews page: statements held by `review` rules. Pending requests first (the one waiting longest on
// top), with Approve and Deny for those who may decide; then the settled ones, newest first.
import type { ApprovalRequest } from '../../approvals/types.js';
import type { UiContext } from '../context.js';
import { type Html, html } from '../html.js';
import {
  approvalCount,
  badge,
  decideForms,
  empty,
  estimateText,
  filterForm,
  relative,
  requester,
  requesterEmail,
  reviewLink,
  sqlCell,
  time,
} from './common.js';

export interface ReviewFilters {
  target?: string;
  rule?: string;
  requester?: string;
  build?: string;
}

/**
 * The requests the filters keep: target, rule and build match exactly; requester is a case-insensitive part of the
 * subject or of the e-mail claim. Empty filters keep everything. The page applies it itself, so a caller may pass
 * every request (the store filters by build and state only).
 */
export function filterReviews(requests: readonly ApprovalRequest[], f: ReviewFilters): ApprovalRequest[] {
  const who = f.requester?.trim().toLowerCase();
  return requests.filter(
    (r) =>
      (!f.target || r.target === f.target) &&
      (!f.rule || r.ruleId === f.rule) &&
      (!f.build || r.build === f.build) &&
      (!who || r.subject.toLowerCase().includes(who) || (requesterEmail(r.claims) ?? '').toLowerCase().includes(who)),
  );
}

/** Pending ones, the one waiting longest first. */
export function pendingFirst(requests: readonly ApprovalRequest[]): { pending: ApprovalRequest[]; settled: ApprovalRequest[] } {
  const pending = requests.filter((r) => r.state === 'pending').sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime());
  const settledAt = (r: ApprovalRequest) => (r.decidedAt ?? r.requestedAt).getTime();
  const settled = requests.filter((r) => r.state !== 'pending').sort((a, b) => settledAt(b) - settledAt(a));
  return { pending, settled };
}

function row(ctx: UiContext, r: ApprovalRequest, decide: boolean): Html {
  const when =
    r.state === 'pending'
      ? html`${time(r.expiresAt)}<br><span class="muted">${relative(ctx, r.expiresAt)}</span>`
      : html`${time(r.decidedAt)}${r.decidedBy ? html`<br><span class="muted">by ${r.decidedBy}</span>` : ''}${
          r.reason ? html`<br><span class="reason">${r.reason}</span>` : ''
        }`;
  return html`<tr class="${r.state === 'pending' ? 'pending' : 'settled'}">
<th scope="row">${reviewLink(ctx, r.id)}</th>
<td>${r.target}</td>
<td>${r.ruleId ?? html`<span class="muted">default</span>`}</td>
<td>${requester(r.subject, r.claims)}</td>
<td>${r.build ?? ''}</td>
<td class="sql-cell">${sqlCell(r.sql)}<br><span class="kinds">${r.kinds.join(', ')}</span></td>
<td>${estimateText(r.estimate)}</td>
<td class="num">${approvalCount(r)}</td>
<td>${badge(r.state)}</td>
<td>${when}</td>
${decide ? html`<td>${r.state === 'pending' ? decideForms(ctx, r) : ''}</td>` : ''}
</tr>`;
}

function table(ctx: UiContext, id: string, title: string, rows: readonly ApprovalRequest[], decide: boolean, whenLabel: string, none: string): Html {
  const head = html`<h2 id="${id}">${title} <span class="count">(${rows.length})</span></h2>`;
  if (!rows.length) return html`<section aria-labelledby="${id}">${head}${empty(none)}</section>`;
  return html`<section aria-labelledby="${id}">${head}
<div class="table-wrap" role="region" aria-labelledby="${id}" tabindex="0">
<table class="list reviews">
<thead><tr><th scope="col">Request</th><th scope="col">Target</th><th scope="col">Rule</th><th scope="col">Requester</th><th scope="col">Build</th><th scope="col">Statement</th><th scope="col">Blast radius</th><th scope="col">Approvals</th><th scope="col">State</th><th scope="col">${whenLabel}</th>${
    decide ? html`<th scope="col">Decide</th>` : ''
  }</tr></thead>
<tbody>
${rows.map((r) => row(ctx, r, decide))}
</tbody>
</table>
</div>
</section>`;
}

/** The Reviews page body. */
export function renderReviews(ctx: UiContext, data: { requests: ApprovalRequest[]; filters: ReviewFilters }): Html {
  const f = data.filters;
  const { pending, settled } = pendingFirst(filterReviews(data.requests, f));
  const decide = ctx.user?.canApprove === true;
  const filtered = Boolean(f.target || f.rule || f.requester || f.build);
  return html`<h1>Reviews</h1>
${filterForm(ctx, '/reviews', 'rf', [
  { name: 'target', label: 'Target', value: f.target },
  { name: 'rule', label: 'Rule', value: f.rule },
  { name: 'requester', label: 'Requester', value: f.requester, placeholder: 'subject or e-mail' },
  { name: 'build', label: 'Build', value: f.build },
])}
<div data-live="reviews" id="reviews-live">
${table(ctx, 'pending', 'Pending', pending, decide, 'Expires', filtered ? 'No pending request matches the filters.' : 'No statement is waiting for a decision.')}
${table(ctx, 'settled', 'Settled', settled, false, 'Decided', filtered ? 'No settled request matches the filters.' : 'No request has been settled yet.')}
</div>`;
}
