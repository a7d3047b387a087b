// Sessions, statements and replay events as JSON (the sessions HTTP API), with their JSON schemas for
// fastify's validation and serialisation. Dates are ISO 8601 strings.
import { approvalJsonSchema, approvalToJson, type ApprovalJson } from '../approvals/json.js';
import type { SessionSummary, StatementRecord } from '../store/index.js';
import type { Replay } from './replay.js';
import type { ResultSample } from './types.js';

export type SessionJson = Omit<SessionSummary, 'startedAt' | 'endedAt' | 'dbRole'> & { startedAt: string; endedAt: string | null; dbRole: string | null };

export type StatementJson = Omit<StatementRecord, 'startedAt' | 'approvalId'> & {
  startedAt: string;
  /** Milliseconds from the session's start. */
  offsetMs: number;
  approvalId: string | null;
  approval: ApprovalJson | null;
  sample: ResultSample | null;
};

export function sessionToJson(s: SessionSummary): SessionJson {
  return { ...s, dbRole: s.dbRole ?? null, startedAt: s.startedAt.toISOString(), endedAt: s.endedAt?.toISOString() ?? null };
}

/** A session's statements with their approvals and samples (GET /api/sessions/:id). */
export function statementsToJson(r: Replay): StatementJson[] {
  const start = r.session.startedAt.getTime();
  return r.statements.map((st) => {
    const a = st.approvalId ? r.approvals.get(st.approvalId) : undefined;
    return {
      ...st,
      startedAt: st.startedAt.toISOString(),
      offsetMs: st.startedAt.getTime() - start,
      approvalId: st.approvalId ?? null,
      approval: a ? approvalToJson(a) : null,
      sample: r.samples.get(st.id) ?? null,
    };
  });
}

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const bool = { type: 'boolean' } as const;
const time = { type: 'string', format: 'date-time' } as const;
const nullable = <T extends string>(type: T) => ({ type: [type, 'null'] }) as const;
const strings = { type: 'array', items: str } as const;
const claims = { type: 'object', additionalProperties: true } as const;
const kinds = strings;
const decision = { type: 'string', enum: ['allow', 'deny', 'review'] } as const;
const protocol = { type: 'string', enum: ['simple', 'parse', 'execute'] } as const;

export const sampleJsonSchema = {
  type: ['object', 'null'],
  required: ['columns', 'rows', 'truncated', 'bytes'],
  properties: {
    columns: { type: 'array', items: { type: 'object', required: ['name', 'type'], properties: { name: str, type: str } } },
    rows: { type: 'array', items: { type: 'array', items: nullable('string') } },
    truncated: bool,
    bytes: int,
  },
} as const;

/** All fields required, in property order (fastify writes required ones first, in this order). */
const allRequired = <P extends Record<string, unknown>>(properties: P) => ({ type: 'object', required: Object.keys(properties), properties }) as const;

export const sessionJsonSchema = allRequired({
  id: str,
  target: str,
  engine: str,
  subject: str,
  issuer: str,
  build: nullable('string'),
  claims,
  actors: strings,
  tokenId: nullable('string'),
  clientAddress: str,
  clientPort: int,
  clientApplication: nullable('string'),
  dbUser: nullable('string'),
  /** The database role the session logged in upstream as (session_roles); null: the broker's own account. */
  dbRole: nullable('string'),
  tls: bool,
  startedAt: time,
  endedAt: { type: ['string', 'null'], format: 'date-time' },
  endReason: nullable('string'),
  statementCount: int,
  allowed: int,
  denied: int,
  reviewed: int,
});

export const statementJsonSchema = allRequired({
  id: int,
  sessionId: str,
  seq: int,
  sql: str,
  protocol,
  kinds,
  decision,
  ruleId: nullable('string'),
  message: nullable('string'),
  startedAt: time,
  offsetMs: num,
  durationMs: nullable('number'),
  tag: nullable('string'),
  rows: nullable('integer'),
  error: nullable('string'),
  approvalId: nullable('string'),
  policyVersion: nullable('integer'),
  approval: { ...approvalJsonSchema, type: ['object', 'null'] },
  sample: sampleJsonSchema,
});

const ref = { session: str, seq: int, statementId: int } as const;
/**
 * Every field of an event is always there (null when unknown), so all are required; listed in property
 * order, which is also the order fastify writes them in (the same as JSON.stringify of the event).
 */
const event = <T extends string, P extends Record<string, unknown>>(type: T, properties: P) => {
  const all = { type: { type: 'string', const: type }, session: str, ...properties };
  return { type: 'object', required: Object.keys(all), properties: all } as const;
};

/** One replay event: whichever of the five shapes its `type` names (see broker/audit/replay.ts). */
export const replayEventSchema = {
  anyOf: [
    event('session-start', {
      at: time,
      target: str,
      engine: str,
      identity: {
        type: 'object',
        properties: { subject: str, issuer: str, build: nullable('string'), claims, actors: strings, tokenId: nullable('string') },
      },
      client: {
        type: 'object',
        properties: { address: str, port: int, application: nullable('string'), user: nullable('string'), tls: bool },
      },
      dbRole: nullable('string'),
    }),
    event('statement', {
      ...ref,
      at: time,
      offsetMs: num,
      sql: str,
      protocol,
      kinds,
      decision,
      ruleId: nullable('string'),
      message: nullable('string'),
    }),
    event('approval', {
      ...ref,
      approvalId: str,
      state: { type: 'string', enum: ['pending', 'approved', 'denied', 'expired', 'cancelled'] },
      ruleId: nullable('string'),
      requestedAt: time,
      decidedAt: { type: ['string', 'null'], format: 'date-time' },
      offsetMs: nullable('number'),
      decidedBy: nullable('string'),
      reason: nullable('string'),
      approvals: { type: 'array', items: { type: 'object', properties: { by: str, at: time } } },
      minApprovals: int,
      scope: { type: 'string', enum: ['statement', 'session'] },
      reused: bool,
    }),
    event('result', {
      ...ref,
      durationMs: num,
      tag: nullable('string'),
      rows: nullable('integer'),
      error: nullable('string'),
      sample: sampleJsonSchema,
    }),
    event('session-end', {
      at: time,
      offsetMs: num,
      reason: nullable('string'),
      statements: int,
      allowed: int,
      denied: int,
      reviewed: int,
    }),
  ],
} as const;
