// Deciding held statements from outside the broker: `jit approvals/approve/deny` and the HTTP API they
// use (bearer admin token), and a broker restart with requests left pending.
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalEvent, ApprovalRequest } from '../../broker/approvals/index.js';
import { parseConfig } from '../../broker/config.js';
import { LocalIssuer } from '../../broker/identity/index.js';
import { startBroker } from '../../broker/main.js';
import { BASE_RULES, direct, eventually, run, startTestBroker, UPSTREAM, type TestBroker } from '../support/broker.js';

const ADMIN = 'cli-admin-token-0123456789';
const RULES = `
admin_token: "${ADMIN}"
rules:
  - { id: hold, tables: ["jit_apc_*"], kinds: [destructive], action: review, timeout: 30s }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;

let t: TestBroker;
const jit = (args: string[], env: Record<string, string> = {}) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, ...args], env);

beforeAll(async () => {
  t = await startTestBroker(RULES);
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_apc_t; CREATE TABLE jit_apc_t (id int); INSERT INTO jit_apc_t VALUES (1), (2)'));
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_apc_t'));
});

async function hold(sql: string): Promise<{ c: pg.Client; result: Promise<unknown>; request: ApprovalRequest }> {
  const c = new pg.Client(t.pgConfig(await t.token({ subject: 'ci:cli', build: 'build-cli' })));
  await c.connect();
  const result = c.query(sql).then(
    (r) => r,
    (e: unknown) => e,
  );
  const request = await eventually(async () => t.broker.approvals.pending().find((r) => r.sql === sql));
  return { c, result, request };
}

describe('jit approvals / approve / deny', () => {
  it('lists pending requests (table and JSON), approves one, denies another with a reason', async () => {
    expect((await jit(['approvals'])).stdout).toBe('no pending approvals\n');
    const a = await hold('DELETE FROM jit_apc_t');
    // Its blast radius, estimated after the request was made (approvals.md#blast-radius).
    const estimate = await eventually(async () => (await t.broker.approvals.get(a.request.id))?.estimate);
    const table = await jit(['approvals']);
    expect(table.stderr).toBe('');
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+TARGET\s+SUBJECT\s+BUILD\s+KINDS\s+RULE\s+APPROVALS\s+EXPIRES IN\s+BLAST RADIUS\s+STATEMENT$/);
    expect(estimate.text).toMatch(/^≈ [\d,]+ rows? of jit_apc_t$/);
    expect(lines[1]).toMatch(
      new RegExp(`^${a.request.id}\\s+app\\s+ci:cli\\s+build-cli\\s+destructive\\s+hold\\s+0/1\\s+\\d+s\\s+${estimate.text}\\s+DELETE FROM jit_apc_t$`),
    );
    const json = JSON.parse((await jit(['approvals', '--json'])).stdout) as Record<string, unknown>[];
    expect(json).toEqual([expect.objectContaining({ id: a.request.id, state: 'pending', sql: 'DELETE FROM jit_apc_t', expiresAt: expect.any(String) })]);

    const ok = await jit(['approve', a.request.id, '--reason', 'cleanup ticket 42', '--by', 'lead']);
    expect(ok).toMatchObject({ code: 0, stdout: `${a.request.id}: approved by cli:lead (cleanup ticket 42)\n` });
    expect(await a.result).toMatchObject({ command: 'DELETE', rowCount: 2 });
    const again = await jit(['approve', a.request.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already ended: approved by cli:lead .*\[ended\]/);

    const replay = await jit(['session', a.request.sessionId]);
    expect(replay.stdout).toMatch(/^#\s+DECISION.*APPROVAL$/m);
    expect(replay.stdout).toMatch(/1\s+review\s+hold\s+destructive\s+DELETE FROM jit_apc_t\s+DELETE 2\s+\S+\s+approved by cli:lead$/m);
    await a.c.end();

    await direct((c) => c.query('INSERT INTO jit_apc_t VALUES (3)'));
    const d = await hold('TRUNCATE jit_apc_t');
    const noReason = await jit(['deny', d.request.id]);
    expect(noReason.code).not.toBe(0);
    expect(noReason.stderr).toContain("required option '--reason <text>'");
    const denied = await jit(['deny', d.request.id, '--reason', 'not today', '--by', 'lead']);
    expect(denied).toMatchObject({ code: 0, stdout: `${d.request.id}: denied by cli:lead (not today)\n` });
    expect(await d.result).toMatchObject({ code: '42501', message: expect.stringContaining('denied by cli:lead (reason: not today)') });
    expect((await d.c.query('SELECT count(*)::int AS n FROM jit_apc_t')).rows).toEqual([{ n: 1 }]);
    await d.c.end();
    expect((await jit(['approvals', '--all'])).stdout).toMatch(/denied/);
  });

  it('says clearly what is wrong: unknown id, wrong token, broker not running, no token configured', async () => {
    const unknown = await jit(['approve', 'a_doesnotexist0000']);
    expect(unknown).toMatchObject({ code: 1, stderr: expect.stringContaining("no approval request 'a_doesnotexist0000' [not_found]") });
    const wrong = await jit(['approvals'], { JIT_ADMIN_TOKEN: 'not-the-right-token-000' });
    expect(wrong).toMatchObject({ code: 1, stderr: expect.stringContaining('refused the admin token') });
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as AddressInfo).port;
        srv.close(() => resolve(p)); // a port nothing listens on
      });
    });
    const down = await jit(['approvals', '--url', `http://127.0.0.1:${port}`]);
    expect(down).toMatchObject({
      code: 1,
      stderr: expect.stringContaining(`cannot reach the broker at http://127.0.0.1:${port} (ECONNREFUSED): is it running`),
    });
    const file = join(t.dir, 'no-token.yaml');
    writeFileSync(file, 'targets: { app: { engine: postgres, upstream: demo } }\n');
    const none = await run(process.execPath, ['bin/jit.js', '--config', file, 'approvals'], { JIT_ADMIN_TOKEN: '' });
    expect(none).toMatchObject({ code: 1, stderr: expect.stringContaining('no admin token: set admin_token in') });
  });
});

describe('HTTP API', () => {
  const call = (path: string, init: RequestInit = {}) => fetch(`${t.httpUrl}/api/approvals${path}`, init);
  const auth = { authorization: `Bearer ${ADMIN}` };

  it('needs the admin token: 401 without it or with another', async () => {
    const missing = await call('');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await missing.json()).toEqual({ error: 'missing admin token: send Authorization: Bearer <admin_token>' });
    expect((await call('', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await call('/x/approve', { method: 'POST', headers: { authorization: `Basic ${ADMIN}` } })).status).toBe(401);
    expect((await call('?state=pending', { headers: auth })).status).toBe(200);
  });

  it('validates: unknown state, deny without a reason, an empty reason; drops unknown fields; 404 for an unknown id', async () => {
    const json = { ...auth, 'content-type': 'application/json' };
    expect((await call('?state=maybe', { headers: auth })).status).toBe(400);
    expect((await call('/a_x/deny', { method: 'POST', headers: json, body: '{}' })).status).toBe(400);
    expect((await call('/a_x/approve', { method: 'POST', headers: json, body: '{"reason":""}' })).status).toBe(400);
    // fastify's validator removes what the schema does not know (a caller cannot smuggle `trusted: false`).
    expect((await call('/a_x/approve', { method: 'POST', headers: json, body: '{"trusted":false}' })).status).toBe(404);
    const noBody = await call('/a_x/approve', { method: 'POST', headers: auth });
    expect(noBody.status).toBe(404);
    expect(await noBody.json()).toMatchObject({ ok: false, code: 'not_found' });
    expect((await call('/a_x', { headers: auth })).status).toBe(404);
  });

  it('503 when the broker has no admin_token', async () => {
    const b = await startTestBroker(BASE_RULES);
    try {
      const r = await fetch(`${b.httpUrl}/api/approvals`, { headers: auth });
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({ error: 'the admin API is disabled: set admin_token (16+ characters) in the broker config' });
    } finally {
      await b.stop();
    }
  });
});

describe('broker restart', () => {
  it('requests left pending by a broker that died are cancelled ("broker restarted") and published at the next start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jit-restart-'));
    const text = `
data_dir: .jit
store: sqlite:.jit/jit.db
listen: { postgres: 127.0.0.1:0, mysql: null, http: 127.0.0.1:0 }
identity: { local_issuer_url: "http://jit-broker.test" }
targets:
  app: { engine: postgres, upstream: "${UPSTREAM}" }
${RULES}`;
    const file = join(dir, 'jit.yaml');
    writeFileSync(file, text);
    const child = spawn(process.execPath, ['bin/jit.js', '--config', file, 'start'], {
      env: { ...process.env, JIT_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const ready = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /postgres (127\.0\.0\.1:\d+), http (http:\S+),/.exec(err);
          if (m) resolve(`${m[1]} ${m[2]}`);
        });
        child.on('exit', () => reject(new Error(`broker exited: ${err}`)));
      });
      const [pgAddr, http] = ready.split(' ') as [string, string];
      const issuer = await LocalIssuer.loadOrCreate(join(dir, '.jit', 'issuer.jwk'), 'http://jit-broker.test');
      const token = await issuer.sign({ subject: 'ci:restart', audience: 'jit-broker', ttlSeconds: 60 });
      const c = new pg.Client({
        host: '127.0.0.1',
        port: Number(pgAddr.split(':')[1]),
        user: 'ci',
        database: 'app',
        password: token,
        ssl: { rejectUnauthorized: false },
      });
      c.on('error', () => {});
      await c.connect();
      const result = c.query('DELETE FROM jit_apc_t').catch((e: Error) => e);
      const pending = await eventually(async () => {
        const r = await fetch(`${http}/api/approvals?state=pending`, { headers: { authorization: `Bearer ${ADMIN}` } });
        const { approvals } = (await r.json()) as { approvals: { id: string }[] };
        return approvals[0];
      });
      child.kill('SIGKILL');
      expect(await result).toBeInstanceOf(Error);

      const events: ApprovalEvent[] = [];
      const broker = await startBroker(parseConfig(text, { file, baseDir: dir }), {
        logger: pino({ level: 'silent' }),
        onApprovals: (a) => void a.on((e) => events.push(e)),
      });
      try {
        expect(events).toEqual([{ type: 'updated', request: expect.objectContaining({ id: pending.id, state: 'cancelled', reason: 'broker restarted' }) }]);
        expect(await broker.store.getApproval(pending.id)).toMatchObject({ state: 'cancelled', reason: 'broker restarted' });
        expect(await broker.approvals.decide(pending.id, { approve: true, by: 'U1' })).toMatchObject({ ok: false, code: 'ended' });
      } finally {
        await broker.close();
      }
      expect(await direct(async (d) => (await d.query('SELECT count(*)::int AS n FROM jit_apc_t')).rows[0].n)).toBe(1);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
