// Who may decide a request, and who asked for it: pure functions over the request and the decider.
// The one reading of an approvers (or revokers) list and of the requester's e-mail: approvals, revocation,
// config validation and the Slack bot all ask here, so the answer does not depend on which path asked.
import type { ApprovalRequest, DecisionInput } from './types.js';

const norm = (s: string) => s.trim().toLowerCase();
const groupKey = (s: string) => norm(s).replace(/^@/, '');

/** Slack group handles (@name) and group ids (S…) stand for several people; anything else is one person. Spaces around an entry do not count. */
export function isGroupApprover(a: string): boolean {
  const t = a.trim();
  return t.startsWith('@') || /^S[A-Z0-9]{6,}$/.test(t);
}

/** The user groups of a list, spaces around them dropped: what a client (the bot) verifies membership of for `groups`. */
export function groupApprovers(list: readonly string[]): string[] {
  return list.filter(isGroupApprover).map((a) => a.trim());
}

/**
 * Whether the decider is on the approvers list: by Slack user id or e-mail (case-insensitive), or
 * through a user group of the list the bot verified them in (`groups`). An empty list: anyone.
 * Trusted deciders (admin token) are not checked here: the caller skips this for them.
 */
export function isListedApprover(approvers: readonly string[], d: Pick<DecisionInput, 'by' | 'email' | 'groups'>): boolean {
  if (approvers.length === 0) return true;
  const people = new Set(approvers.filter((a) => !isGroupApprover(a)).map(norm));
  if (people.has(norm(d.by)) || (d.email && people.has(norm(d.email)))) return true;
  const groups = new Set(groupApprovers(approvers).map(groupKey));
  return (d.groups ?? []).some((g) => groups.has(groupKey(g)));
}

const looksLikeEmail = (s: string) => /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s);

/** The requester's e-mail addresses the broker knows, lower case, each once: the token's `email` (or GitLab `user_email`) claim, and a subject that is one. */
export function requesterEmails(r: Pick<ApprovalRequest, 'claims' | 'subject'>): string[] {
  const out = new Set<string>();
  for (const c of [r.claims['email'], r.claims['user_email'], r.subject]) if (typeof c === 'string' && looksLikeEmail(c)) out.add(norm(c));
  return [...out];
}

/** Whether the decider is the requester, as far as the broker can map them (by e-mail). */
export function isOwnRequest(r: Pick<ApprovalRequest, 'claims' | 'subject'>, d: Pick<DecisionInput, 'by' | 'email'>): boolean {
  const mine = requesterEmails(r);
  if (!mine.length) return false;
  const theirs = [d.email, d.by]
    .filter((x): x is string => typeof x === 'string' && looksLikeEmail(x.replace(/^(cli|api):/, '')))
    .map((x) => norm(x.replace(/^(cli|api):/, '')));
  return theirs.some((e) => mine.includes(e));
}

/** 300 → "5m", 90 → "1m30s", 0.5 → "500ms". */
export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  const parts: string[] = [];
  let s = Math.round(seconds);
  for (const [unit, n] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${unit}`);
      s %= n;
    }
  }
  return parts.join('');
}
