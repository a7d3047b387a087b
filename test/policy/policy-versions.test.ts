// Policy as data (issue 15), as a user sees it on a running broker: `jit policy apply` (the real CLI, as a
// process) of a version that denies what was allowed; the next statement of sessions already open (psql,
// node-postgres, a prepared statement) is refused naming the new version, without a restart; history, show,
// diff, check --version; rollback restores; every recorded statement names the version that decided it.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_RULES, eventually, psqlEnv, run, startTestBroker, type TestBroker } from '../support/broker.js';

const ADMIN = 'policy-versions-admin-token';
let t: TestBroker;
const jit = (...args: string[]) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, ...args]);

/** A psql that stays open: each statement is followed by an \echo marker, and what it printed is returned. */
class Psql {
  private out = '';
  private err = '';
  private n = 0;
  private readonly child: ChildProcessWithoutNullStreams;
  constructor(env: Record<string, string>) {
    this.child = spawn('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=0'], { env: { ...process.env, ...env } });
    this.child.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr.on('data', (d: Buffer) => (this.err += d.toString()));
  }
  async run(sql: string): Promise<{ stdout: string; stderr: string }> {
    const mark = `--mark-${++this.n}--`;
    const [o, e] = [this.out.length, this.err.length];
    this.child.stdin.write(`${sql};\n\\echo ${mark}\n`);
    await eventually(async () => this.out.includes(mark), 20_000);
    return { stdout: this.out.slice(o).replace(mark, '').trim(), stderr: this.err.slice(e).trim() };
  }
  close(): Promise<unknown> {
    this.child.stdin.end('\\q\n');
    return new Promise((done) => this.child.once('exit', done));
  }
}

const NO_READS = `
# No reads today (a policy file: rules and default only)
rules:
  - { id: no-reads, kinds: [read], action: deny, message: reads are paused }
  - { id: day-to-day, kinds: [write], action: allow }
default: deny
`;

beforeAll(async () => {
  t = await startTestBroker(`${BASE_RULES}\nadmin_token: ${ADMIN}\n`);
});
afterAll(async () => t?.stop());

describe('jit policy', () => {
  let c: pg.Client;
  let psql: Psql;
  let sessionId: string;

  afterAll(async () => {
    await c?.end().catch(() => {});
    await psql?.close();
  });

  it('a broker on an empty store made its config rules version 1', async () => {
    const h = await jit('policy', 'history');
    expect(h.stderr).toBe('');
    const lines = h.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^VERSION\s+APPLIED\s+AUTHOR\s+RULES\s+DEFAULT\s+SHA256\s+MESSAGE$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^1 \(active\)\s+\S+ \S+\s+config\s+2\s+deny\s+[0-9a-f]{12}\s+bootstrap from .*jit\.yaml$/);
  });

  it('apply: open sessions are refused at their next statement naming the new version, without a restart', async () => {
    const token = await t.token({ build: 'build-policy' });
    c = new pg.Client(t.pgConfig(token));
    c.on('error', () => {});
    await c.connect();
    sessionId = (await t.broker.store.listSessions({ build: 'build-policy', limit: 1 }))[0]!.id;
    // Allowed under version 1: a plain read, and a prepared statement (decided at its Parse).
    expect((await c.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect((await c.query({ name: 'twice', text: 'SELECT $1::int * 2 AS n', values: [21] })).rows).toEqual([{ n: 42 }]);
    await c.query('CREATE TEMP TABLE jit_t_policy (n int)');
    psql = new Psql(psqlEnv(t, token));
    expect(await psql.run("SELECT 'before'")).toEqual({ stdout: 'before', stderr: '' });

    const file = join(t.dir, 'no-reads.yaml');
    writeFileSync(file, NO_READS);
    const applied = await jit('policy', 'apply', file, '--message', 'pause reads');
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain(`policy version 2 applied to the broker at ${t.httpUrl} (was version 1)`);
    expect(applied.stdout).toContain('+ rule no-reads: deny read');
    expect(applied.stdout).toContain('- rule scratch');
    expect(applied.stdout).toContain('~ rule day-to-day: allow write');

    // The next statement of each open session: refused, naming the rule and the new version.
    await expect(c.query('SELECT 2 AS n')).rejects.toMatchObject({
      code: '42501',
      message: "jit-broker: reads are paused (rule 'no-reads'; policy version 2, applied after this session began)",
    });
    // The prepared statement allowed under version 1 is decided again at its next execution.
    await expect(c.query({ name: 'twice', text: 'SELECT $1::int * 2 AS n', values: [5] })).rejects.toMatchObject({
      message: expect.stringContaining('policy version 2'),
    });
    const refused = await psql.run("SELECT 'after'");
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain("jit-broker: reads are paused (rule 'no-reads'; policy version 2, applied after this session began)");
    // A session opened under version 2 is told the rule only (the version it began under is no news).
    const fresh = new pg.Client(t.pgConfig(token));
    await fresh.connect();
    await expect(fresh.query('SELECT 1')).rejects.toMatchObject({ message: "jit-broker: reads are paused (rule 'no-reads')" });
    await fresh.end();
    // A write is still allowed by version 2, in the same session.
    expect((await c.query('INSERT INTO jit_t_policy VALUES (1)')).rowCount).toBe(1);
  });

  it('history lists both, show prints a version as YAML, diff names what changed, check --version decides with it', async () => {
    const h = await jit('policy', 'history', '--json');
    const versions = JSON.parse(h.stdout) as { version: number; author: string; message: string | null; sha256: string }[];
    expect(versions.map((v) => [v.version, v.message])).toEqual([
      [1, expect.stringMatching(/^bootstrap from /)],
      [2, 'pause reads'],
    ]);
    expect(versions[1]!.author).toMatch(/^cli:/);
    const table = await jit('policy', 'history');
    expect(table.stdout.split('\n')[1]).toMatch(/^2 \(active\)\s+.*pause reads$/);

    const show = await jit('policy', 'show');
    expect(show.stdout).toMatch(/^# policy version 2 \(active\), applied by cli:\S+ at \S+ \S+: pause reads\n# sha256 [0-9a-f]{64}\n/);
    expect(show.stdout).toContain('id: no-reads');
    const v1 = JSON.parse((await jit('policy', 'show', '--version', '1', '--json')).stdout) as { version: number; rules: { rules: { id: string }[] } };
    expect(v1.version).toBe(1);
    expect(v1.rules.rules.map((r) => r.id)).toEqual(['scratch', 'day-to-day']);

    const diff = await jit('policy', 'diff', '1', '2');
    expect(diff.stdout).toBe('policy version 1 → 2\n+ rule no-reads: deny read\n- rule scratch\n~ rule day-to-day: allow write\n');
    const missing = await jit('policy', 'show', '--version', '9');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no policy version 9');

    const check1 = await jit('policy', 'check', '--target', 'app', '--version', '1', 'SELECT 1');
    expect(check1.stdout).toContain('=> allow (rule day-to-day) under policy version 1');
    const check2 = await jit('policy', 'check', '--target', 'app', '--version', '2', '--expect', 'allow', 'SELECT 1');
    expect(check2.code).toBe(1);
    expect(check2.stdout).toContain('=> deny (rule no-reads) under policy version 2');
  });

  it('an invalid file is refused with the problem named, and nothing is stored', async () => {
    const file = join(t.dir, 'bad.yaml');
    writeFileSync(file, 'rules:\n  - { id: a, kinds: [read], action: allow, timeout: 5m }\n  - { id: a, kinds: [write], action: deny }\n');
    const r = await jit('policy', 'apply', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('rules[0].timeout: timeout applies only to a rule with action: review');
    expect(r.stderr).toContain("rules[1].id: duplicate rule id 'a'");
    writeFileSync(file, 'rules:\n  - { id: a, kinds: [sometimes], action: deny }\n');
    const kinds = await jit('policy', 'apply', file);
    expect(kinds.code).toBe(2);
    expect(kinds.stderr).toContain('rules[0].kinds[0]');
    expect((await t.broker.store.listPolicyVersions()).length).toBe(2);
  });

  it('rollback 1 is a new version with the rules of 1: the next statement runs again', async () => {
    const r = await jit('policy', 'rollback', '1');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('policy version 3 applied');
    expect(r.stdout).toContain('- rule no-reads');
    expect((await c.query('SELECT 3 AS n')).rows).toEqual([{ n: 3 }]);
    expect((await c.query({ name: 'twice', text: 'SELECT $1::int * 2 AS n', values: [4] })).rows).toEqual([{ n: 8 }]);
    expect(await psql.run("SELECT 'again'")).toEqual({ stdout: 'again', stderr: '' });
    const v3 = await t.broker.store.getPolicyVersion(3);
    expect(v3?.message).toBe('rollback to version 1');
    expect(v3?.sha256).toBe((await t.broker.store.getPolicyVersion(1))?.sha256);
    // Applying what is already active stores nothing.
    const same = await jit('policy', 'rollback', '3');
    expect(same.stdout).toContain('no change: the active policy version 3 already has these rules');
  });

  it('jit session ID and the sessions API show the version that decided each statement', async () => {
    const r = await jit('session', sessionId, '--wide');
    const rows = r.stdout.split('\n').filter((l) => /^\d+\s/.test(l));
    const pick = (sql: string) => rows.find((l) => l.includes(sql)) ?? '';
    expect(r.stdout).toMatch(/\bPOLICY$/m);
    expect(pick('SELECT 1 AS n')).toMatch(/\sv1$/);
    expect(pick('SELECT 2 AS n')).toMatch(/^\d+\s+deny\s+no-reads\s.*\sv2$/);
    expect(pick('CREATE TEMP TABLE')).toMatch(/\sv1$/);
    expect(pick('INSERT INTO jit_t_policy')).toMatch(/^\d+\s+allow\s+day-to-day\s.*\sv2$/);
    expect(pick('SELECT 3 AS n')).toMatch(/\sv3$/);
    const json = JSON.parse((await jit('session', sessionId, '--json')).stdout) as { statements: { sql: string; policyVersion: number | null }[] };
    expect(json.statements.map((s) => [s.sql.split(' ').slice(0, 2).join(' '), s.policyVersion])).toEqual([
      ['SELECT 1', 1],
      ['SELECT $1::int', 1],
      ['CREATE TEMP', 1],
      ['SELECT 2', 2],
      ['SELECT $1::int', 2],
      ['INSERT INTO', 2],
      ['SELECT 3', 3],
      ['SELECT $1::int', 3],
    ]);
    const res = await fetch(`${t.httpUrl}/api/sessions/${sessionId}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const api = (await res.json()) as { statements: { policyVersion: number | null }[] };
    expect(api.statements.map((s) => s.policyVersion)).toEqual([1, 1, 1, 2, 2, 2, 3, 3]);
  });

  it('without a broker to answer, apply goes to the store of the config, and the running broker switches within 1 s', async () => {
    // The same store, but no admin token: the CLI writes the store itself; the broker reads it on its next poll.
    const local = join(t.dir, 'local.yaml');
    writeFileSync(local, readFileSync(t.configFile, 'utf8').replace(`admin_token: ${ADMIN}`, ''));
    const file = join(t.dir, 'no-reads.yaml');
    const r = await run(process.execPath, ['bin/jit.js', '--config', local, 'policy', 'apply', file]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^policy version 4 applied to the store .*jit\.db \(was version 3\)/);
    await eventually(async () => t.broker.policy.holder.current.version === 4, 1000);
    await expect(c.query('SELECT 4')).rejects.toMatchObject({ message: expect.stringContaining('policy version 4') });
  });

  it('the policy API: GET the active version, one version, all; POST validates', async () => {
    const get = (path: string) => fetch(`${t.httpUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(((await (await get('/api/policy')).json()) as { policy: { version: number } }).policy.version).toBe(4);
    expect(((await (await get('/api/policy/versions/2')).json()) as { policy: { message: string } }).policy.message).toBe('pause reads');
    expect((await get('/api/policy/versions/99')).status).toBe(404);
    expect(((await (await get('/api/policy/versions')).json()) as { versions: unknown[] }).versions).toHaveLength(4);
    expect((await fetch(`${t.httpUrl}/api/policy`)).status).toBe(401);
    const bad = await fetch(`${t.httpUrl}/api/policy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rules: [{ id: 'x', targets: ['nowhere'], action: 'allow' }], default: 'deny' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { problems: string[] }).problems).toEqual(["rules[0].targets[0]: unknown target 'nowhere'"]);
    const ok = await fetch(`${t.httpUrl}/api/policy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rules: [{ id: 'all', action: 'allow' }], default: 'deny', message: 'from a script', author: 'deploy-bot' }),
    });
    expect(ok.status).toBe(201);
    expect(await ok.json()).toMatchObject({ policy: { version: 5, author: 'api:deploy-bot', message: 'from a script' }, previous: 4 });
    expect((await c.query('SELECT 5 AS n')).rows).toEqual([{ n: 5 }]);
  });
});
