// `jit logins` and GET /api/logins: refused logins (why, what the token claimed) merged with accepted ones
// (their session), newest first; --refused / ?refused=true, --since / ?since=; the admin token guards the
// API; refusals older than audit.login_retention are pruned.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoginAudit, type LoginJson } from '../../broker/audit/logins.js';
import { openStore, type NewRefusedLogin } from '../../broker/store/index.js';
import { eventually, run } from '../support/broker.js';
import { ADMIN, startLoginsBroker, type LoginsBroker } from '../support/logins.js';

let t: LoginsBroker;
const jit = (...args: string[]) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, ...args]);
const HOUR = 3600_000;

const refused = (at: Date, subject: string): NewRefusedLogin => ({
  at,
  engine: 'postgres',
  target: 'app',
  clientAddress: '10.0.0.9',
  clientPort: 5555,
  clientApplication: 'old-app',
  dbUser: 'ci',
  tls: true,
  reason: 'expired',
  message: 'token refused: expired',
  issuer: 'https://issuer.example',
  subject,
  tokenId: null,
  build: null,
});

beforeAll(async () => {
  t = await startLoginsBroker();
  // One accepted login, one refused (alg none), and one refusal recorded two hours ago.
  const ok = new pg.Client({
    host: '127.0.0.1',
    port: t.pgPort,
    user: 'ci',
    database: 'app',
    password: await t.token({ subject: 'list:ok', build: 'list/1' }),
    ssl: { rejectUnauthorized: false },
    application_name: 'list-ok',
  });
  await ok.connect();
  await ok.end();
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'https://forger.example', sub: 'list:forger', exp: 9999999999 })).toString('base64url')}.`;
  const bad = new pg.Client({ host: '127.0.0.1', port: t.pgPort, user: 'ci', database: 'app', password: none, ssl: { rejectUnauthorized: false } });
  await expect(bad.connect()).rejects.toThrow(/algorithm/);
  await eventually(async () => (await t.broker.store.listRefusedLogins()).length === 1);
  await t.broker.store.recordRefusedLogin(refused(new Date(Date.now() - 2 * HOUR), 'list:two-hours-ago'));
});
afterAll(async () => t?.stop());

describe('jit logins', () => {
  it('lists accepted and refused logins, newest first, as a table', async () => {
    const res = await jit('logins');
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^AT\s+OUTCOME\s+ENGINE\s+TARGET\s+CLIENT\s+SUBJECT\s+BUILD\s+DETAIL$/);
    expect(lines[1]).toMatch(/refused\s+postgres\s+app\s+127\.0\.0\.1\s+list:forger\s+algorithm: token refused: algorithm 'none' is not allowed/);
    expect(lines[2]).toMatch(/accepted\s+postgres\s+app\s+127\.0\.0\.1 \(list-ok\)\s+list:ok\s+list\/1\s+session s_[0-9a-z]{16}/);
    expect(lines[3]).toMatch(/refused\s+postgres\s+app\s+10\.0\.0\.9 \(old-app\)\s+list:two-hours-ago\s+expired: token refused: expired/);
    expect(res.stdout).toContain('what its token claimed, unverified');
  });

  it('--refused lists refusals only; --since bounds them in time', async () => {
    const refusedOnly = await jit('logins', '--refused');
    expect(refusedOnly.stdout).not.toMatch(/Z {2}accepted /);
    expect(refusedOnly.stdout).toContain('list:forger');
    expect(refusedOnly.stdout).toContain('list:two-hours-ago');
    const lastHour = await jit('logins', '--refused', '--since', '1h');
    expect(lastHour.stdout).toContain('list:forger');
    expect(lastHour.stdout).not.toContain('list:two-hours-ago');
    expect((await jit('logins', '--since', '3h')).stdout).toContain('list:two-hours-ago');
    const bad = await jit('logins', '--since', 'yesterday-ish');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/neither a duration .* nor a date/);
  });

  it('--json gives every field, dates as ISO 8601', async () => {
    const res = await jit('logins', '--json', '--since', '1h');
    const rows = JSON.parse(res.stdout) as LoginJson[];
    expect(rows.map((r) => [r.outcome, r.subject])).toEqual([
      ['refused', 'list:forger'],
      ['accepted', 'list:ok'],
    ]);
    expect(rows[0]).toMatchObject({ engine: 'postgres', target: 'app', reason: 'algorithm', issuer: 'https://forger.example', sessionId: null, tls: true });
    expect(rows[1]).toMatchObject({ reason: null, sessionId: expect.stringMatching(/^s_/), build: 'list/1', clientApplication: 'list-ok' });
    expect(new Date(rows[0]!.at).toISOString()).toBe(rows[0]!.at);
  });
});

describe('GET /api/logins', () => {
  const get = async (query: string, token: string | null = ADMIN) => {
    const res = await fetch(`${t.httpUrl}/api/logins${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, body: (await res.json()) as { logins?: LoginJson[]; error?: string } };
  };

  it('needs the admin token', async () => {
    expect((await get('', null)).status).toBe(401);
    expect((await get('', 'not-the-admin-token-at-all')).status).toBe(401);
  });

  it('lists logins with the same filters as jit logins', async () => {
    const all = await get('');
    expect(all.status).toBe(200);
    expect(all.body.logins!.map((l) => l.subject)).toEqual(['list:forger', 'list:ok', 'list:two-hours-ago']);
    const r = await get('?refused=true&since=1h');
    expect(r.body.logins!.map((l) => [l.outcome, l.subject, l.reason])).toEqual([['refused', 'list:forger', 'algorithm']]);
    expect((await get('?since=3h&limit=1')).body.logins!.map((l) => l.subject)).toEqual(['list:forger']);
    expect((await get(`?since=${encodeURIComponent(new Date(Date.now() - 3 * HOUR).toISOString())}&refused=true`)).body.logins).toHaveLength(2);
    const bad = await get('?since=soon');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/neither a duration/);
  });
});

describe('audit.login_retention', () => {
  it('refusals older than the retention are pruned when the broker starts, newer ones kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jit-retention-'));
    const store = await openStore(`sqlite:${join(dir, 'jit.db')}`);
    try {
      const day = 24 * HOUR;
      await store.recordRefusedLogin(refused(new Date(Date.now() - 40 * day), 'retention:old'));
      await store.recordRefusedLogin(refused(new Date(Date.now() - 20 * day), 'retention:recent'));
      const logged: string[] = [];
      const audit = await startLoginAudit({ store, retentionSeconds: 30 * 86400, log: (msg) => logged.push(msg) });
      audit.close();
      expect((await store.listRefusedLogins()).map((r) => r.subject)).toEqual(['retention:recent']);
      expect(logged).toContain('pruned refused logins past audit.login_retention');
      // A shorter retention, pruned again (as the hourly timer does).
      const shorter = await startLoginAudit({ store, retentionSeconds: 86400, log: () => {} });
      shorter.close();
      expect(await store.listRefusedLogins()).toEqual([]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is a config key with a 30-day default', async () => {
    expect(t.broker.config.audit.login_retention).toBe(30 * 86400);
  });
});
