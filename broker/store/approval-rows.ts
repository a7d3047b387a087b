// An approval request as both store dialects keep it: the row of either schema (the same columns; their
// ApprovalRow types are alike) to the request, and the request's mutable part to the columns an update sets.
import type { ApprovalRequest } from '../approvals/types.js';
import type { ApprovalRow } from './schema.sqlite.js';

export function mutable(r: ApprovalRequest) {
  return {
    state: r.state,
    approvals: r.approvals.map((a) => ({ by: a.by, at: a.at.getTime() })),
    decidedBy: r.decidedBy,
    decidedAt: r.decidedAt,
    reason: r.reason,
    messageChannel: r.message?.channel ?? null,
    messageTs: r.message?.ts ?? null,
    estimate: r.estimate ?? null,
  };
}

export function toRequest(row: ApprovalRow): ApprovalRequest {
  return {
    id: row.id,
    target: row.target,
    sessionId: row.sessionId,
    statementId: row.statementId,
    subject: row.subject,
    build: row.build,
    claims: row.claims,
    actors: row.actors,
    sql: row.sql,
    kinds: row.kinds,
    ruleId: row.ruleId,
    settings: row.settings,
    requestedAt: row.requestedAt,
    expiresAt: row.expiresAt,
    ...(row.policyVersion !== null ? { policyVersion: row.policyVersion } : {}),
    state: row.state,
    approvals: row.approvals.map((a) => ({ by: a.by, at: new Date(a.at) })),
    decidedBy: row.decidedBy,
    decidedAt: row.decidedAt,
    reason: row.reason,
    message: row.messageChannel !== null && row.messageTs !== null ? { channel: row.messageChannel, ts: row.messageTs } : null,
    estimate: row.estimate ?? null,
  };
}
