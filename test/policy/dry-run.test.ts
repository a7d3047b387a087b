// `jit policy apply FILE --dry-run`: statements recorded through a real broker, decided again by the real CLI under
// the rules of FILE; what would change is reported (counts, rules, examples), and nothing is stored.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_RULES, direct, eventually, run, sleep, startTestBroker, UPSTREAM, type TestBroker } from '../support/broker.js';

let t: TestBroker;
const table = `jit_t_dryrun_${process.pid}`;
const jit = (...args: string[]) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'policy', 'apply', ...args]);

/** Rules that deny build-a's writes, before the rules the broker runs with (BASE_RULES). */
const DENY_WRITES = `
rules:
  - { id: no-writes-a, builds: [build-a], kinds: [write], action: deny }
  - { id: scratch, tables: ["jit_t_*", "pgbench_*"], kinds: [read, write, ddl, destructive], action: allow }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;

interface Report {
  since: string;
  target: string | null;
  considered: number;
  unchanged: number;
  changed: number;
  skipped: Record<string, number>;
  catalog: { used: boolean; note: string };
  changes: {
    from: { action: string; ruleId: string | null };
    to: { action: string; ruleId: string | null };
    count: number;
    builds: Record<string, Record<string, number>>;
    kinds: Record<string, number>;
    examples: { sessionId: string; statementId: number; target: string; build: string | null; at: string; sql: string }[];
  }[];
}

function file(name: string, text: string): string {
  const path = join(t.dir, name);
  writeFileSync(path, text);
  return path;
}

/** Run statements as `build` on `target` through the broker, and wait until the store has them all. */
async function statements(build: string, target: string, sqls: string[]): Promise<void> {
  const before = await recorded();
  const c = new pg.Client(t.pgConfig(await t.token({ build }), { database: target }));
  await c.connect();
  for (const sql of sqls) await c.query(sql);
  await c.end();
  await eventually(async () => (await recorded()) >= before + sqls.length);
}

async function recorded(): Promise<number> {
  let n = 0;
  for (const s of await t.broker.store.listSessions({})) n += s.statementCount;
  return n;
}

const policyVersions = (): number => {
  const db = new Database(join(t.dir, '.jit', 'jit.db'), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM policy_versions').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

let between: string;

beforeAll(async () => {
  await direct((c) => c.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int, note text)`));
  t = await startTestBroker(BASE_RULES, { targets: `  other: { engine: postgres, upstream: "${UPSTREAM}" }` });
  // Older ones: a write by build-a that the window of the --since test leaves out.
  await statements('build-a', 'app', [`INSERT INTO ${table} VALUES (0, 'old')`]);
  await sleep(20);
  between = new Date().toISOString();
  await sleep(20);
  await statements('build-a', 'app', [
    `SELECT * FROM ${table}`,
    `INSERT INTO ${table} VALUES (1, 'a')`,
    `UPDATE ${table} SET note = 'b' WHERE id = 1`,
    'SELECT 1',
  ]);
  await statements('build-b', 'app', [`INSERT INTO ${table} VALUES (2, 'b')`, 'SELECT 2']);
  await statements('build-a', 'other', [`INSERT INTO ${table} VALUES (3, 'other')`]);
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query(`DROP TABLE IF EXISTS ${table}`));
});

describe('jit policy apply FILE --dry-run', () => {
  it('reports exactly the decisions that would change: from → to, by rule, with examples', async () => {
    const r = await jit(file('deny.yaml', DENY_WRITES), '--dry-run', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report).toMatchObject({ considered: 8, changed: 4, unchanged: 4, skipped: {}, target: null });
    expect(report.changes).toHaveLength(1);
    const [change] = report.changes;
    expect(change).toMatchObject({
      from: { action: 'allow', ruleId: 'scratch' },
      to: { action: 'deny', ruleId: 'no-writes-a' },
      count: 4,
      builds: { 'build-a': { write: 4 } },
      kinds: { write: 4 },
    });
    expect(change!.examples.map((e) => e.sql).sort()).toEqual(
      [
        `INSERT INTO ${table} VALUES (0, 'old')`,
        `INSERT INTO ${table} VALUES (1, 'a')`,
        `INSERT INTO ${table} VALUES (3, 'other')`,
        `UPDATE ${table} SET note = 'b' WHERE id = 1`,
      ].sort(),
    );
    expect(change!.examples.every((e) => e.build === 'build-a' && /^s_/.test(e.sessionId))).toBe(true);
    expect(report.catalog).toMatchObject({ used: false });
  });

  it('prints a table of changes and examples for people, and says catalog decisions are approximate', async () => {
    const r = await jit(file('deny.yaml', DENY_WRITES), '--dry-run', '--examples', '1');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('8 statements decided again: 4 unchanged, 4 changed');
    expect(r.stdout).toMatch(/allow\(scratch\)\s+→\s+deny\(no-writes-a\)\s+4\s+build-a: 4/);
    expect(r.stdout).toContain('allow(scratch) → deny(no-writes-a), 1 of 4:');
    expect(r.stdout).toContain('decisions that depend on the catalog are approximate');
  });

  it('rules that decide as the recorded ones did change nothing', async () => {
    const r = await jit(file('same.yaml', BASE_RULES), '--dry-run', '--json', '--fail-on-change');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ considered: 8, changed: 0, unchanged: 8, changes: [] });
  });

  it('--fail-on-change exits 1 when a decision would change', async () => {
    const r = await jit(file('deny.yaml', DENY_WRITES), '--dry-run', '--fail-on-change');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('4 changed');
  });

  it('--target keeps the statements of that target only', async () => {
    const r = await jit(file('deny.yaml', DENY_WRITES), '--dry-run', '--json', '--target', 'other');
    const report = JSON.parse(r.stdout) as Report;
    expect(report).toMatchObject({ target: 'other', considered: 1, changed: 1 });
    expect(report.changes[0]!.examples.map((e) => [e.target, e.sql])).toEqual([['other', `INSERT INTO ${table} VALUES (3, 'other')`]]);
  });

  it('--since leaves out what was recorded before the window', async () => {
    const r = await jit(file('deny.yaml', DENY_WRITES), '--dry-run', '--json', '--since', between);
    const report = JSON.parse(r.stdout) as Report;
    expect(report).toMatchObject({ considered: 7, changed: 3 });
    expect(report.changes[0]!.examples.some((e) => e.sql.includes("'old'"))).toBe(false);
    const recent = JSON.parse((await jit(file('deny.yaml', DENY_WRITES), '--dry-run', '--json', '--since', '24h')).stdout) as Report;
    expect(recent.considered).toBe(8);
    const bad = await jit(file('deny.yaml', DENY_WRITES), '--dry-run', '--since', 'last week');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--since 'last week' is neither a duration");
  });

  it('a file with a syntax or schema error is refused, naming what is wrong (exit 2)', async () => {
    const syntax = await jit(file('broken.yaml', 'rules:\n  - { id: x, action: deny\n'), '--dry-run');
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toContain(`invalid policy ${join(t.dir, 'broken.yaml')}`);
    expect(syntax.stdout).toBe('');
    const schema = await jit(file('schema.yaml', 'rules:\n  - { id: x, action: maybe }\n'), '--dry-run');
    expect(schema.code).toBe(2);
    expect(schema.stderr).toMatch(/rules\[0\]\.action: .*allow.*deny.*review/);
    const target = await jit(file('target.yaml', 'rules:\n  - { id: y, targets: [nowhere], action: allow }\n  - { id: y, action: deny }\n'), '--dry-run');
    expect(target.code).toBe(2);
    expect(target.stderr).toContain("rules[0].targets[0]: unknown target 'nowhere'");
    expect(target.stderr).toContain("rules[1].id: duplicate rule id 'y'");
    const keys = await jit(file('keys.yaml', 'rule: []\n'), '--dry-run');
    expect(keys.code).toBe(2);
    expect(keys.stderr).toContain('no rules: in the file');
  });

  it('takes the rules of a whole jit.yaml', async () => {
    const r = await jit(t.configFile, '--dry-run', '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({ considered: 8, changed: 0 });
  });

  it('stores nothing: no policy version, and the broker still decides by its own rules', async () => {
    const versions = policyVersions();
    expect((await jit(file('deny.yaml', DENY_WRITES), '--dry-run')).code).toBe(0);
    expect(policyVersions()).toBe(versions);
    await statements('build-a', 'app', [`INSERT INTO ${table} VALUES (4, 'after')`]);
    const rows = await direct((c) => c.query(`SELECT note FROM ${table} WHERE id = 4`));
    expect(rows.rows).toEqual([{ note: 'after' }]);
  });
});
