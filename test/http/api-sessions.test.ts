// The sessions HTTP API (/api/sessions): admin-token authentication, listing with filters, one session
// with its statements (approvals, samples), and the replay events; served from the store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalToJson } from '../../broker/approvals/json.js';
import { loadReplay, replayEvents } from '../../broker/audit/replay.js';
import { buildHttp } from '../../broker/http/server.js';
import { openStore, type Store } from '../../broker/store/index.js';
import { recordFixture, SAMPLE, T0, type Fixture } from '../support/replay-fixture.js';

const ADMIN = 'sessions-admin-token-0123456789';
let dir: string;
let store: Store;
let app: FastifyInstance;
let fx: Fixture;
let other: Fixture;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jit-api-sessions-'));
  store = await openStore(`sqlite:${join(dir, 'broker.db')}`);
  fx = await recordFixture(store);
  other = await recordFixture(store, { build: 'other-build', subject: 'someone-else' });
  app = await buildHttp({ issuer: null, ready: async () => {}, logger: false, store, adminToken: ADMIN });
});
afterAll(async () => {
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(url: string, token: string | null = ADMIN) {
  const res = await app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.statusCode, json: res.json() as unknown, headers: res.headers };
}

describe('authentication', () => {
  it('401 without the admin token or with another; 503 when the broker has none', async () => {
    expect(await get('/api/sessions', null)).toMatchObject({ status: 401, json: { error: expect.stringContaining('missing admin token') } });
    const wrong = await get(`/api/sessions/${fx.sessionId}/events`, 'not-the-token-at-all');
    expect(wrong).toMatchObject({ status: 401, json: { error: 'wrong admin token' } });
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="jit-broker"');
    const off = await buildHttp({ issuer: null, ready: async () => {}, logger: false, store, adminToken: null });
    try {
      const res = await off.inject({ method: 'GET', url: '/api/sessions', headers: { authorization: `Bearer ${ADMIN}` } });
      expect(res.statusCode).toBe(503);
    } finally {
      await off.close();
    }
  });

  it("logs every request through the broker's logger (method, URL, status), never the admin token", async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const logged = await buildHttp({ issuer: null, ready: async () => {}, logger, store, adminToken: ADMIN });
    try {
      await logged.inject({ method: 'GET', url: '/api/sessions?build=b-1', headers: { authorization: `Bearer ${ADMIN}` } });
      await logged.inject({ method: 'GET', url: '/api/sessions', headers: { authorization: 'Bearer not-the-token-at-all' } });
      const entries = lines.map((l) => JSON.parse(l) as { req?: { method: string; url: string }; res?: { statusCode: number } });
      expect(entries.filter((e) => e.req).map((e) => `${e.req!.method} ${e.req!.url}`)).toEqual(['GET /api/sessions?build=b-1', 'GET /api/sessions']);
      expect(entries.filter((e) => e.res).map((e) => e.res!.statusCode)).toEqual([200, 401]);
      expect(lines.join('\n')).not.toContain(ADMIN);
      expect(lines.join('\n')).not.toContain('not-the-token-at-all');
    } finally {
      await logged.close();
    }
  });

  it('with a generated admin token (adminLoopbackOnly), a client from another address is refused even with the token', async () => {
    const local = await buildHttp({ issuer: null, ready: async () => {}, logger: false, store, adminToken: ADMIN, adminLoopbackOnly: true });
    try {
      const ask = (remoteAddress: string) =>
        local.inject({ method: 'GET', url: '/api/sessions', remoteAddress, headers: { authorization: `Bearer ${ADMIN}` } });
      const remote = await ask('10.0.0.7');
      expect(remote.statusCode).toBe(403);
      expect(remote.json()).toEqual({ error: expect.stringContaining('accepts from loopback only: set admin_token in its config') });
      expect((await ask('127.0.0.1')).statusCode).toBe(200);
      expect((await ask('::1')).statusCode).toBe(200);
      // Only the admin API: health and the rest answer everyone.
      expect((await local.inject({ method: 'GET', url: '/healthz', remoteAddress: '10.0.0.7' })).statusCode).toBe(200);
    } finally {
      await local.close();
    }
  });
});

describe('GET /api/sessions', () => {
  it('lists sessions newest first, filtered by build, subject and target, limited', async () => {
    const all = (await get('/api/sessions')).json as { sessions: Record<string, unknown>[] };
    expect(all.sessions.map((s) => s.id)).toEqual([other.sessionId, fx.sessionId]);
    expect(all.sessions[1]).toEqual({
      id: fx.sessionId,
      target: 'app',
      engine: 'postgres',
      subject: 'repo:acme/api',
      issuer: 'https://token.actions.githubusercontent.com',
      build: 'acme/api/77/1',
      claims: { repository: 'acme/api', run_id: 77 },
      actors: ['agent:fixer', 'tool:psql'],
      tokenId: 'jti-77',
      clientAddress: '10.0.0.7',
      clientPort: 50432,
      clientApplication: 'psql',
      dbUser: 'ci',
      dbRole: null,
      tls: true,
      startedAt: new Date(T0).toISOString(),
      endedAt: new Date(T0 + 9000).toISOString(),
      endReason: 'client vanished',
      statementCount: 7,
      allowed: 2,
      denied: 1,
      reviewed: 4,
    });
    const ids = async (q: string) => ((await get(`/api/sessions?${q}`)).json as { sessions: { id: string }[] }).sessions.map((s) => s.id);
    expect(await ids('build=acme/api/77/1')).toEqual([fx.sessionId]);
    expect(await ids('subject=someone-else')).toEqual([other.sessionId]);
    expect(await ids('target=app&limit=1')).toEqual([other.sessionId]);
    expect(await ids('target=elsewhere')).toEqual([]);
    expect(await ids('open=true')).toEqual([]);
  });

  it('400 for a bad limit', async () => {
    expect((await get('/api/sessions?limit=0')).status).toBe(400);
    expect((await get('/api/sessions?limit=many')).status).toBe(400);
  });
});

describe('GET /api/sessions/:id', () => {
  it('the summary and the statements with their approvals and samples (a unique prefix is enough)', async () => {
    const { status, json } = await get(`/api/sessions/${fx.sessionId.slice(2, 10)}`);
    expect(status).toBe(200);
    const body = json as { session: { id: string }; statements: Record<string, unknown>[] };
    expect(body.session.id).toBe(fx.sessionId);
    expect(body.statements).toHaveLength(7);
    expect(body.statements[0]).toEqual({
      id: fx.ids[0],
      sessionId: fx.sessionId,
      seq: 1,
      sql: 'SELECT id, email, note\nFROM customers ORDER BY id',
      protocol: 'simple',
      kinds: ['read'],
      decision: 'allow',
      ruleId: 'ci-reads',
      message: null,
      startedAt: new Date(T0 + 100).toISOString(),
      offsetMs: 100,
      durationMs: 1.25,
      tag: 'SELECT 5',
      rows: 5,
      error: null,
      approvalId: null,
      // Recorded straight into the store (the fixture), not decided by a stored policy version.
      policyVersion: null,
      approval: null,
      sample: SAMPLE,
    });
    expect(body.statements[1]).toMatchObject({ approvalId: fx.approvals.drop.id, approval: approvalToJson(fx.approvals.drop), sample: null });
    expect(body.statements[6]).toMatchObject({ seq: 7, durationMs: null, tag: null });
  });

  it('404 for no such session, 409 for an ambiguous prefix', async () => {
    expect(await get('/api/sessions/s_zzzzzzzzzzzzzzzz')).toMatchObject({ status: 404, json: { error: "no session 's_zzzzzzzzzzzzzzzz'" } });
    expect(await get('/api/sessions/s_')).toMatchObject({ status: 409, json: { error: expect.stringContaining('ambiguous') } });
  });
});

describe('GET /api/sessions/:id/events', () => {
  it('the replay events as a JSON array, exactly as `jit replay --json` prints them', async () => {
    const { status, json } = await get(`/api/sessions/${fx.sessionId}/events`);
    expect(status).toBe(200);
    const expected = JSON.parse(JSON.stringify(replayEvents((await loadReplay(store, fx.sessionId))!))) as unknown[];
    expect(json).toEqual(expected);
    expect((json as { type: string }[]).map((e) => e.type)).toContain('approval');
  });

  it('404 for no such session', async () => {
    expect((await get('/api/sessions/s_zzzzzzzzzzzzzzzz/events')).status).toBe(404);
  });
});
