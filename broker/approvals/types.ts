// Approvals: the vocabulary shared by the broker core, the HTTP API, the CLI and the Slack bot.
// The bot is a client of this interface and of the store, never of an engine.
import type { BlastRadius } from '../store/types.js';
import type { Identity, Kind, ReviewSettings } from '../types.js';

/** Per-rule review settings: defined with the shared vocabulary (broker/types.ts), which policy speaks too. */
export type { ReviewSettings } from '../types.js';

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled';

export interface ApprovalRequest {
  id: string;
  target: string;
  sessionId: string;
  statementId: number | null;
  subject: string;
  build: string | null;
  claims: Record<string, unknown>;
  actors: string[];
  sql: string;
  kinds: Kind[];
  ruleId: string | null;
  /** The policy version whose rule held it (null or absent: none recorded). */
  policyVersion?: number | null;
  settings: ReviewSettings;
  requestedAt: Date;
  expiresAt: Date;
  state: ApprovalState;
  /** Who approved so far (min_approvals may ask for more than one). */
  approvals: { by: string; at: Date }[];
  decidedBy: string | null;
  decidedAt: Date | null;
  reason: string | null;
  /** Where the bot posted it (channel + message ts), to update it later. */
  message: { channel: string; ts: string } | null;
  /** What the statement would touch, estimated without running it (blast radius); null or absent: no estimate (yet). */
  estimate?: BlastRadius | null;
}

/** A person's decision, from Slack, the CLI or the HTTP API. */
export interface DecisionInput {
  approve: boolean;
  /** Who decided: a Slack user id, or `cli:<name>` / `api:<name>`. */
  by: string;
  /** The person's e-mail when known, to refuse requesters approving themselves. */
  email?: string | null;
  reason?: string | null;
  /**
   * The user groups of the request's `approvers` list the decider belongs to, as written there
   * ("@dba-oncall" or "S…"). The broker cannot see Slack groups: the bot resolves membership
   * (usergroups.users.list) and passes only the groups it verified. Ignored when `trusted`.
   */
  groups?: string[];
  /**
   * The decider authenticated with the broker's admin token (CLI, HTTP API): the approvers list does
   * not apply to them. The own-request check still does when their e-mail is given.
   */
  trusted?: boolean;
}

/** What the broker core hands to Approvals.request() for a statement held by a review rule. */
export interface ApprovalInput {
  target: string;
  sessionId: string;
  statementId: number | null;
  identity: Identity;
  sql: string;
  kinds: Kind[];
  ruleId: string | null;
  /** The policy version that decided the review. */
  policyVersion?: number | null;
  settings: ReviewSettings;
  /**
   * The blast radius being estimated (broker/approvals/estimate.ts): the request is made at once, and the estimate
   * added when it comes (within its budget), updating the message. Absent or null: none.
   */
  estimate?: Promise<BlastRadius | null> | null;
}

/** For listings (store, HTTP API, CLI). */
export interface ApprovalFilter {
  state?: ApprovalState;
  sessionId?: string;
  build?: string;
  /** Most recent requests only; all matching when absent. */
  limit?: number;
}

export type DecisionResult =
  | { ok: true; request: ApprovalRequest }
  /** Nothing changed: the request had already ended, the person may not decide it, or it does not exist. */
  | { ok: false; code: 'not_found' | 'ended' | 'not_approver' | 'own_request' | 'already_approved'; message: string; request?: ApprovalRequest };

/**
 * Published on the approvals bus. `request` is a snapshot: listeners may keep it. Listeners run
 * synchronously in the publisher's turn and must not throw (errors are caught and logged) or block.
 * setMessage() publishes nothing (the bot that set the message is the one that would listen).
 */
export type ApprovalEvent =
  | { type: 'requested'; request: ApprovalRequest }
  /**
   * A decision or expiry or cancellation changed the request (state may still be pending with one more approval).
   * `remote`: the change was made by another replica of the fleet (which has updated the Slack message itself);
   * this broker holds the statement and released or refused it.
   */
  | { type: 'updated'; request: ApprovalRequest; remote?: boolean };
