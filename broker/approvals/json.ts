// Approval requests as JSON (HTTP API, `jit approvals --json`): dates as ISO 8601 strings.
import type { ApprovalRequest, ApprovalState, ReviewSettings } from './types.js';
import type { Kind } from '../types.js';

export interface ApprovalJson {
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
  settings: ReviewSettings;
  requestedAt: string;
  expiresAt: string;
  state: ApprovalState;
  approvals: { by: string; at: string }[];
  decidedBy: string | null;
  decidedAt: string | null;
  reason: string | null;
  message: { channel: string; ts: string } | null;
}

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
  },
} as const;
