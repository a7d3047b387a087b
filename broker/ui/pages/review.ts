// One approval request in full: who asked (identity, delegation chain), what (the statement, its kinds), under which
// rule and policy version, what it would touch, every approval and the decision; Approve and Deny for a person who
// may decide it, else why not.
import type { ApprovalRequest } from '../../approvals/types.js';
import type { UiContext } from '../context.js';
import { type Html, html } from '../html.js';
import {
  actorsChain,
  approvalCount,
  badge,
  claimsList,
  decideForms,
  estimateText,
  facts,
  relative,
  requesterEmail,
  sessionLink,
  span,
  sqlBlock,
  time,
} from './common.js';

function history(r: ApprovalRequest): Html {
  const items: Html[] = [html`<li>${time(r.requestedAt)} — requested (${r.approvals.length ? 'approvals below' : 'no approval yet'})</li>`];
  for (const a of r.approvals) items.push(html`<li>${time(a.at)} — approved by <strong>${a.by}</strong></li>`);
  if (r.state !== 'pending') {
    const verb = r.state === 'approved' ? 'released' : r.state;
    items.push(
      html`<li>${time(r.decidedAt)} — ${badge(r.state)}${r.state === 'approved' ? html` (${verb})` : ''}${r.decidedBy ? html` by <strong>${r.decidedBy}</strong>` : ''}${
        r.reason ? html`: <span class="reason">${r.reason}</span>` : ''
      }${r.decidedAt ? html` <span class="muted">(${span(r.decidedAt.getTime() - r.requestedAt.getTime())} after the request)</span>` : ''}</li>`,
    );
  }
  return html`<ol class="history">${items}</ol>`;
}

/**
 * The review page body for one request. `message`: a flash after a decision; `whyNot`: why the person may not decide (or
 * why their decision was refused), shown whenever given; the decide forms only when `canDecide` and the request is pending.
 */
export function renderReview(ctx: UiContext, data: { request: ApprovalRequest; canDecide: boolean; whyNot?: string; message?: string }): Html {
  const r = data.request;
  const s = r.settings;
  const pending = r.state === 'pending';
  // whyNot is shown whenever given (why this person may not decide, or why their last try was refused); the forms
  // whenever they may decide a pending request.
  const whyNot = data.whyNot ? html`<p class="why-not" id="why-not">${data.whyNot}</p>` : '';
  const forms = pending && data.canDecide ? decideForms(ctx, r) : '';
  const decide = whyNot || forms ? html`<section aria-labelledby="decide"><h2 id="decide">Decide</h2>${whyNot}${forms}</section>` : '';
  return html`<p class="crumbs"><a href="${ctx.base}/reviews">Reviews</a> › ${r.id}</p>
<h1>Request ${r.id} ${badge(r.state)}</h1>
${data.message ? html`<div class="flash" role="status">${data.message}</div>` : ''}
<div data-live="review" id="review-live">
${decide}
<section aria-labelledby="statement"><h2 id="statement">Statement</h2>
${sqlBlock(r.sql)}
${facts([
  ['Kinds', r.kinds.join(', ')],
  ['Target', r.target],
  ['Session', sessionLink(ctx, r.sessionId)],
  ['Statement id', r.statementId],
  ['Rule', r.ruleId ?? html`<span class="muted">the default</span>`],
  ['Policy version', r.policyVersion != null ? html`<a href="${ctx.base}/policy/${r.policyVersion}">${r.policyVersion}</a>` : null],
  ['Blast radius', r.estimate ? estimateText(r.estimate) : html`<span class="muted">no estimate</span>`],
  ['Tables', r.estimate?.tables.length ? r.estimate.tables.join(', ') : null],
])}
</section>
<section aria-labelledby="who"><h2 id="who">Requester</h2>
${facts([
  ['Subject', r.subject],
  ['E-mail', requesterEmail(r.claims)],
  ['Build', r.build ?? html`<span class="muted">none</span>`],
  ['Delegation chain', actorsChain(r.actors, r.subject)],
  ['Claims', claimsList(r.claims)],
])}
</section>
<section aria-labelledby="approvals"><h2 id="approvals">Approvals</h2>
${facts([
  ['State', badge(r.state)],
  ['Approvals', `${approvalCount(r)} needed`],
  ['Approvers', s.approvers.length ? s.approvers.join(', ') : 'anyone who may approve'],
  ['Scope', s.scope === 'session' ? 'session: the same text may run again in that session' : 'statement: one execution'],
  ['Requested', time(r.requestedAt)],
  ['Expires', pending ? html`${time(r.expiresAt)} <span class="muted">(${relative(ctx, r.expiresAt)})</span>` : time(r.expiresAt)],
  ['Timeout', span(s.timeoutSeconds * 1000)],
])}
<h3>History</h3>
${history(r)}
</section>
</div>`;
}
