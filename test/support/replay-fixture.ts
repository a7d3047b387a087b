// A recorded session with every kind of replay event, written through the store API at known times:
// an allowed SELECT with a sample, a DROP held and approved, a denied statement, a held statement
// denied, a write run again under a session-scope approval, a statement without an outcome; then the end.
import type { ApprovalRequest } from '../../broker/approvals/types.js';
import type { ResultSample } from '../../broker/audit/types.js';
import { newApprovalId, type NewStatement, type Store } from '../../broker/store/index.js';

export const T0 = 1_800_000_000_000;

export const SAMPLE: ResultSample = {
  columns: [
    { name: 'id', type: 'int4' },
    { name: 'email', type: 'text' },
    { name: 'note', type: 'text' },
  ],
  rows: [
    ['1', 'a***@acme.com', 'first'],
    ['2', 'b***@acme.com', null],
  ],
  truncated: true,
  bytes: 39,
};

export interface Fixture {
  sessionId: string;
  ids: number[];
  approvals: { drop: ApprovalRequest; denied: ApprovalRequest; session: ApprovalRequest };
}

function approval(sessionId: string, statementId: number, over: Partial<ApprovalRequest>): ApprovalRequest {
  const requestedAt = over.requestedAt ?? new Date(T0);
  return {
    id: newApprovalId(),
    target: 'app',
    sessionId,
    statementId,
    subject: 'repo:acme/api',
    build: 'acme/api/77/1',
    claims: {},
    actors: [],
    sql: '',
    kinds: ['destructive'],
    ruleId: 'hold',
    settings: { approvers: [], timeoutSeconds: 300, minApprovals: 1, scope: 'statement' },
    requestedAt,
    expiresAt: new Date(requestedAt.getTime() + 300_000),
    state: 'pending',
    approvals: [],
    decidedBy: null,
    decidedAt: null,
    reason: null,
    message: null,
    ...over,
  };
}

export async function recordFixture(store: Store, over: { build?: string; subject?: string } = {}): Promise<Fixture> {
  const sessionId = await store.createSession({
    target: 'app',
    engine: 'postgres',
    identity: {
      subject: over.subject ?? 'repo:acme/api',
      issuer: 'https://token.actions.githubusercontent.com',
      build: over.build ?? 'acme/api/77/1',
      claims: { repository: 'acme/api', run_id: 77 },
      actors: ['agent:fixer', 'tool:psql'],
      tokenId: 'jti-77',
      expiresAt: new Date(T0 + 3_600_000),
    },
    client: { address: '10.0.0.7', port: 50432, application: 'psql', user: 'ci', tls: true },
    startedAt: new Date(T0),
  });
  const st = (at: number, sql: string, decision: NewStatement['decision'], ruleId: string | null, message: string | null, extra: Partial<NewStatement> = {}) =>
    store.recordStatement({
      sessionId,
      sql,
      protocol: 'simple',
      kinds: decision === 'allow' ? ['read'] : ['destructive'],
      decision,
      ruleId,
      message,
      startedAt: new Date(T0 + at),
      ...extra,
    });

  const select = await st(100, 'SELECT id, email, note\nFROM customers ORDER BY id', 'allow', 'ci-reads', null);
  await store.completeStatement(select, { durationMs: 1.25, tag: 'SELECT 5', rows: 5, error: null }, SAMPLE);

  const drop = await st(1500, 'DROP TABLE old_orders', 'review', 'hold', "a destructive statement needs approval under rule 'hold'");
  const dropApproval = approval(sessionId, drop, { requestedAt: new Date(T0 + 1500), sql: 'DROP TABLE old_orders' });
  await store.createApproval(dropApproval);
  const approved: ApprovalRequest = {
    ...dropApproval,
    state: 'approved',
    approvals: [{ by: 'api:alice', at: new Date(T0 + 4000) }],
    decidedBy: 'api:alice',
    decidedAt: new Date(T0 + 4000),
    reason: 'planned',
  };
  await store.updateApproval(approved);
  await store.completeStatement(drop, { durationMs: 4.5, tag: 'DROP TABLE', rows: null, error: null });

  const denied = await st(5000, 'TRUNCATE audit_log', 'deny', 'no-ddl', 'schema changes go through the deploy workflow');

  const held = await st(6000, 'DELETE FROM orders', 'review', 'hold', "a destructive statement needs approval under rule 'hold'");
  const heldApproval = approval(sessionId, held, { requestedAt: new Date(T0 + 6000), sql: 'DELETE FROM orders' });
  await store.createApproval(heldApproval);
  const deniedApproval: ApprovalRequest = {
    ...heldApproval,
    state: 'denied',
    decidedBy: 'U123',
    decidedAt: new Date(T0 + 6500),
    reason: 'not during business hours',
  };
  await store.updateApproval(deniedApproval);

  const fix = await st(7000, 'UPDATE orders SET state = 1 WHERE id = 7', 'review', 'fixes', null);
  const sessionApproval = approval(sessionId, fix, {
    requestedAt: new Date(T0 + 7000),
    ruleId: 'fixes',
    settings: { approvers: [], timeoutSeconds: 300, minApprovals: 2, scope: 'session' },
  });
  await store.createApproval(sessionApproval);
  const twice: ApprovalRequest = {
    ...sessionApproval,
    state: 'approved',
    approvals: [
      { by: 'U1', at: new Date(T0 + 7100) },
      { by: 'U2', at: new Date(T0 + 7200) },
    ],
    decidedBy: 'U2',
    decidedAt: new Date(T0 + 7200),
  };
  await store.updateApproval(twice);
  await store.completeStatement(fix, { durationMs: 0.8, tag: 'UPDATE 1', rows: 1, error: null });
  const again = await st(7500, 'UPDATE orders SET state = 1 WHERE id = 7', 'review', 'fixes', `approved for this session (approval ${sessionApproval.id})`, {
    approvalId: sessionApproval.id,
  });
  await store.completeStatement(again, { durationMs: 0.7, tag: null, rows: null, error: 'deadlock detected' });

  const lost = await st(8000, 'SELECT pg_sleep(60)', 'allow', 'ci-reads', null);
  await store.endSession(sessionId, 'client vanished', new Date(T0 + 9000));
  return { sessionId, ids: [select, drop, denied, held, fix, again, lost], approvals: { drop: approved, denied: deniedApproval, session: twice } };
}
