// The Slack bot under test: a real fastify with the bot mounted, the fake Slack for the Web API, and
// small in-memory implementations of the bot's ports (approvals with the core's basic rules, a store).
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { isListedApprover, isOwnRequest } from '../../broker/approvals/approvers.js';
import type { ApprovalEvent, ApprovalRequest, DecisionInput, DecisionResult } from '../../broker/approvals/types.js';
import type { SessionFilter, SessionSummary, StatementRecord } from '../../broker/store/index.js';
import { createSlackBot, type ApprovalsPort, type BotLog, type MessageRef, type SlackBot, type StorePort } from '../../bot/index.js';
import { FakeSlack, signedHeaders } from './fake-slack.js';

export const SECRET = 'test-signing-secret';
export const CHANNEL = 'C01APPROVALS';

export function makeRequest(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  const now = new Date();
  return {
    id: 'apr_1',
    target: 'prod',
    sessionId: 's_0123456789abcdef',
    statementId: 7,
    subject: 'repo:acme/shop:ref:refs/heads/main',
    build: 'acme/shop/123/2',
    claims: { repository: 'acme/shop', run_id: '123', run_attempt: '2', workflow: 'deploy', email: 'dev@acme.test' },
    actors: ['agent-b', 'bot-a'],
    sql: "DELETE FROM orders WHERE created_at < now() - interval '90 days'",
    kinds: ['write', 'destructive'],
    ruleId: 'prod-destructive-review',
    settings: { approvers: ['U01ALICE', 'dev@acme.test', '@dba-oncall'], timeoutSeconds: 300, minApprovals: 1, scope: 'statement' },
    requestedAt: now,
    expiresAt: new Date(now.getTime() + 300_000),
    state: 'pending',
    approvals: [],
    decidedBy: null,
    decidedAt: null,
    reason: null,
    message: null,
    ...over,
  };
}

/** The approvals core, reduced to what the bot relies on (with the core's own approver rules). */
export class MemoryApprovals implements ApprovalsPort {
  readonly requests = new Map<string, ApprovalRequest>();
  readonly decisions: { id: string; input: DecisionInput }[] = [];
  readonly messages: { id: string; ref: MessageRef }[] = [];
  private listeners: ((e: ApprovalEvent) => void)[] = [];

  request(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
    const req = makeRequest(over);
    this.requests.set(req.id, req);
    this.emit({ type: 'requested', request: req });
    return req;
  }

  end(id: string, state: 'expired' | 'cancelled', reason: string | null = null): void {
    const req = this.requests.get(id);
    if (!req) throw new Error(`no request ${id}`);
    Object.assign(req, { state, reason, decidedAt: new Date() });
    this.emit({ type: 'updated', request: { ...req } });
  }

  async decide(id: string, input: DecisionInput): Promise<DecisionResult> {
    this.decisions.push({ id, input });
    const req = this.requests.get(id);
    if (!req) return { ok: false, code: 'not_found', message: `no approval request ${id}` };
    if (req.state !== 'pending') return { ok: false, code: 'ended', message: `request ${id} is ${req.state}`, request: req };
    if (!isListedApprover(req.settings.approvers, input)) return { ok: false, code: 'not_approver', message: `${input.by} is not an approver` };
    if (input.approve && isOwnRequest(req, input)) return { ok: false, code: 'own_request', message: 'you cannot approve your own request' };
    const now = new Date();
    if (input.approve) {
      req.approvals.push({ by: input.by, at: now });
      if (req.approvals.length >= req.settings.minApprovals) Object.assign(req, { state: 'approved', decidedBy: input.by, decidedAt: now });
    } else {
      Object.assign(req, { state: 'denied', decidedBy: input.by, decidedAt: now, reason: input.reason ?? null });
    }
    const copy = { ...req, approvals: [...req.approvals] };
    this.emit({ type: 'updated', request: copy });
    return { ok: true, request: copy };
  }

  get(id: string): ApprovalRequest | null {
    return this.requests.get(id) ?? null;
  }

  pending(): ApprovalRequest[] {
    return [...this.requests.values()].filter((r) => r.state === 'pending');
  }

  setMessage(id: string, ref: MessageRef): void {
    this.messages.push({ id, ref });
    const req = this.requests.get(id);
    if (req) req.message = ref;
  }

  on(listener: (e: ApprovalEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  private emit(e: ApprovalEvent): void {
    for (const l of this.listeners) l(e);
  }
}

export class MemoryStore implements StorePort {
  sessions: SessionSummary[] = [];
  statements = new Map<string, StatementRecord[]>();
  async listSessions(f: SessionFilter): Promise<SessionSummary[]> {
    const all = this.sessions.filter((s) => (f.build === undefined || s.build === f.build) && (f.subject === undefined || s.subject === f.subject));
    return f.limit === undefined ? all : all.slice(0, f.limit);
  }
  async getSession(id: string): Promise<SessionSummary | null> {
    const matches = this.sessions.filter((s) => s.id.startsWith(id.startsWith('s_') ? id : `s_${id}`));
    if (matches.length > 1) {
      const e = new Error(`session id prefix "${id}" is ambiguous`);
      e.name = 'AmbiguousSessionIdError';
      throw e;
    }
    return matches[0] ?? null;
  }
  async listStatements(sessionId: string): Promise<StatementRecord[]> {
    return this.statements.get(sessionId) ?? [];
  }
}

export function makeSession(i: number, over: Partial<SessionSummary> = {}): SessionSummary {
  const startedAt = new Date(Date.UTC(2025, 0, 1, 12, 0, i));
  return {
    id: `s_${String(i).padStart(16, '0')}`,
    target: 'prod',
    engine: 'postgres',
    subject: 'repo:acme/shop:ref:refs/heads/main',
    issuer: 'https://token.actions.githubusercontent.com',
    build: 'build-123',
    claims: {},
    actors: ['agent-b', 'bot-a'],
    tokenId: null,
    clientAddress: '10.0.0.5',
    clientPort: 40000 + i,
    clientApplication: 'psql',
    dbUser: null,
    tls: true,
    startedAt,
    endedAt: new Date(startedAt.getTime() + 12_000),
    endReason: 'client closed the connection',
    statementCount: 5,
    allowed: 3,
    denied: 1,
    reviewed: 1,
    ...over,
  };
}

export interface Harness {
  slack: FakeSlack;
  http: FastifyInstance;
  bot: SlackBot;
  approvals: MemoryApprovals;
  store: MemoryStore;
  logs: { level: string; obj: object; msg?: string }[];
  /** POSTs a body to /slack/events signed with `secret` (default: the right one) at `timestamp`. */
  send(body: string, opts?: { secret?: string; timestamp?: number; headers?: Record<string, string> }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function startHarness(opts: { retries?: number; listLimit?: number; consoleUrl?: string } = {}): Promise<Harness> {
  const slack = await FakeSlack.start();
  slack.users = [
    { id: 'U01ALICE', email: 'alice@acme.test' },
    { id: 'U02BOB', email: 'bob@acme.test' },
    { id: 'U03CAROL', email: 'carol@acme.test' },
    { id: 'U04EVE', email: 'eve@acme.test' },
    { id: 'U05DEV', email: 'dev@acme.test' },
  ];
  slack.groups = [{ id: 'S01DBA00', handle: 'dba-oncall', users: ['U02BOB', 'U03CAROL'] }];
  const logs: Harness['logs'] = [];
  const at = (level: string) => (obj: object, msg?: string) => void logs.push({ level, obj, msg });
  const log: BotLog = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const approvals = new MemoryApprovals();
  const store = new MemoryStore();
  const bot = createSlackBot({
    config: { botToken: 'xoxb-test', signingSecret: SECRET, channel: CHANNEL, apiUrl: slack.apiUrl, consoleUrl: opts.consoleUrl },
    approvals,
    store,
    log,
    options: { retryConfig: { retries: opts.retries ?? 3, factor: 2, minTimeout: 10, maxTimeout: 50 }, listLimit: opts.listLimit },
  });
  const http = Fastify({ logger: false });
  await bot.mount(http);
  await http.ready();
  await bot.start();
  return {
    slack,
    http,
    bot,
    approvals,
    store,
    logs,
    send(body, o = {}) {
      const headers = { ...signedHeaders(o.secret ?? SECRET, body, o.timestamp), ...o.headers };
      return http.inject({ method: 'POST', url: '/slack/events', headers, payload: body });
    },
    async close() {
      await bot.stop();
      await http.close();
      await slack.close();
    },
  };
}
