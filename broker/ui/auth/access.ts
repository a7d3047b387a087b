// Who may view the console and who may decide a request from it. Viewing: `ui.viewers` (claims globs, as a
// rule's `claims`). Deciding: what the review rules already say, read by the approvals' own functions
// (approvers.ts); the console only shapes the DecisionInput, and Approvals.decide has the last word.
import { groupApprovers, isListedApprover, isOwnRequest } from '../../approvals/approvers.js';
import type { ApprovalRequest, DecisionInput } from '../../approvals/types.js';
import { claimMatches } from '../../policy/glob.js';
import type { UiUser } from './session.js';

/** Whether ID token claims match every glob of `ui.viewers` (absent: anyone who signed in). */
export function isViewer(viewers: Readonly<Record<string, string>> | undefined, claims: Record<string, unknown>): boolean {
  if (!viewers) return true;
  return Object.entries(viewers).every(([name, glob]) => claimMatches(glob, claims[name]));
}

/** The user's decision as Approvals takes it (approve and reason added by the caller). */
export function deciderOf(user: UiUser, r: ApprovalRequest): Omit<DecisionInput, 'approve' | 'reason'> {
  if (user.via === 'local') return { by: 'ui:admin', trusted: true };
  const mine = new Set(user.groups.map((g) => g.trim().toLowerCase().replace(/^@/, '')));
  return {
    by: `ui:${user.email ?? user.sub}`,
    email: user.email,
    // The rule's groups this person's ID token lists (a group is written `@name` in approvers, `name` by the IdP).
    groups: groupApprovers(r.settings.approvers).filter((g) => mine.has(g.toLowerCase().replace(/^@/, ''))),
  };
}

/** The context's canApprove: someone the approvers lists could name (an e-mail or groups), or the local admin. */
export function mayApproveAny(user: UiUser): boolean {
  return user.via === 'local' || user.email !== null || user.groups.length > 0;
}

/** Whether the user may decide `r` now, and why not (shown on the page). Approvals checks again when they do. */
export function canDecide(user: UiUser, r: ApprovalRequest): { ok: true } | { ok: false; why: string } {
  if (r.state !== 'pending') return { ok: false, why: `this request is ${r.state}` };
  const d = deciderOf(user, r);
  if (d.trusted) return { ok: true };
  if (!isListedApprover(r.settings.approvers, d))
    return { ok: false, why: `you are not among the approvers of this request (${r.settings.approvers.join(', ')})` };
  if (isOwnRequest(r, d)) return { ok: false, why: 'this is your own request: another approver must decide it' };
  const who = d.by.toLowerCase();
  if (r.approvals.some((a) => a.by.trim().toLowerCase() === who))
    return { ok: false, why: `you have approved it already; it needs ${r.settings.minApprovals} distinct approvers` };
  return { ok: true };
}
