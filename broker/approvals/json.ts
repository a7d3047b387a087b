// Approval requests as JSON (HTTP API, `jit approvals --json`): dates as ISO 8601 strings.
import type { ApprovalRequest } from './types.js';

/** An ApprovalRequest with its dates as ISO 8601 strings (derived, so the two never drift apart). */
export type ApprovalJson = Omit<ApprovalRequest, 'requestedAt' | 'expiresAt' | 'decidedAt' | 'approvals'> & {
  requestedAt: string;
  expiresAt: string;
  decidedAt: string | null;
  approvals: { by: string; at: string }[];
};

export function approvalToJson(r: ApprovalRequest): ApprovalJson {
  return {
    ...r,
    requestedAt: r.requestedAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    approvals: r.approvals.map((a) => ({ by: a.by, at: a.at.toISOString() })),
    decidedAt: r.decidedAt?.toISOString() ?? null,
  };
}

const nullable = (type: string) => ({ type: [type, 'null'] });
const str = { type: 'string' };
const time = { type: 'string', format: 'date-time' };

/** JSON schema of ApprovalJson, for fastify's response serialisation. */
export const approvalJsonSchema = {
  type: 'object',
  required: ['id', 'target', 'sessionId', 'subject', 'sql', 'kinds', 'settings', 'requestedAt', 'expiresAt', 'state', 'approvals'],
  properties: {
    id: str,
    target: str,
    sessionId: str,
    statementId: nullable('integer'),
    subject: str,
    build: nullable('string'),
    claims: { type: 'object', additionalProperties: true },
    actors: { type: 'array', items: str },
    sql: str,
    kinds: { type: 'array', items: str },
    ruleId: nullable('string'),
    policyVersion: nullable('integer'),
    settings: {
      type: 'object',
      properties: { approvers: { type: 'array', items: str }, timeoutSeconds: { type: 'number' }, minApprovals: { type: 'integer' }, scope: str },
    },
    requestedAt: time,
    expiresAt: time,
    state: { type: 'string', enum: ['pending', 'approved', 'denied', 'expired', 'cancelled'] },
    approvals: { type: 'array', items: { type: 'object', properties: { by: str, at: time } } },
    decidedBy: nullable('string'),
    decidedAt: { type: ['string', 'null'], format: 'date-time' },
    reason: nullable('string'),
    message: { type: ['object', 'null'], properties: { channel: str, ts: str } },
    estimate: {
      type: ['object', 'null'],
      properties: {
        rows: nullable('number'),
        bytes: nullable('number'),
        tables: { type: 'array', items: str },
        source: { type: 'string', enum: ['explain', 'catalog'] },
        text: str,
      },
    },
  },
} as const;
