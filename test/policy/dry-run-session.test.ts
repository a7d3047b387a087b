// `jit policy apply FILE --dry-run` reads each session's statements as the broker read them: a PostgreSQL
// `EXECUTE q` is what the session prepared as q, and with --catalog a view is judged by the tables it reads.
// Without --catalog the dry run judges views by name alone, and a decision that depended on the catalog shows.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_RULES, direct, eventually, run, startTestBroker, type TestBroker } from '../support/broker.js';

let t: TestBroker;
const base = `dryrun_base_${process.pid}`;
const view = `jit_t_dryrun_v_${process.pid}`;
const table = `jit_t_dryrun_p_${process.pid}`;

interface Report {
  considered: number;
  changed: number;
  catalog: { used: boolean };
  changes: { from: { ruleId: string | null }; to: { ruleId: string | null }; count: number; examples: { sql: string }[] }[];
}

const dryRun = async (...args: string[]): Promise<Report> => {
  const policy = join(t.dir, 'same.yaml');
  writeFileSync(policy, BASE_RULES);
  const r = await run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'policy', 'apply', policy, '--dry-run', '--json', ...args]);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Report;
};

beforeAll(async () => {
  await direct((c) =>
    c.query(
      `DROP VIEW IF EXISTS ${view}; DROP TABLE IF EXISTS ${base}, ${table};
       CREATE TABLE ${base} (id int); CREATE VIEW ${view} AS SELECT * FROM ${base}; CREATE TABLE ${table} (id int)`,
    ),
  );
  t = await startTestBroker(BASE_RULES);
  const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-s' })));
  await c.connect();
  await c.query(`SELECT * FROM ${view}`);
  await c.query(`PREPARE q AS INSERT INTO ${table} VALUES (1)`);
  await c.query('EXECUTE q');
  await c.end();
  await eventually(async () => (await t.broker.store.listSessions({}))[0]?.statementCount === 3);
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query(`DROP VIEW IF EXISTS ${view}; DROP TABLE IF EXISTS ${base}, ${table}`));
});

describe('jit policy apply --dry-run reads sessions as the broker did', () => {
  it('the recorded decisions are what the broker decided: the view by its base table, EXECUTE by what was prepared', async () => {
    const [s] = await t.broker.store.listSessions({});
    const recorded = (await t.broker.store.listStatements(s!.id)).map((st) => [st.sql, st.decision, st.ruleId]);
    expect(recorded).toEqual([
      [`SELECT * FROM ${view}`, 'allow', 'day-to-day'],
      [`PREPARE q AS INSERT INTO ${table} VALUES (1)`, 'allow', 'scratch'],
      ['EXECUTE q', 'allow', 'scratch'],
    ]);
  });

  it('without --catalog, EXECUTE q is still what was prepared, and only the view, judged by name, shows as changed', async () => {
    const report = await dryRun();
    expect(report).toMatchObject({ considered: 3, changed: 1, catalog: { used: false } });
    expect(report.changes).toHaveLength(1);
    expect(report.changes[0]).toMatchObject({ from: { ruleId: 'day-to-day' }, to: { ruleId: 'scratch' }, count: 1 });
    expect(report.changes[0]!.examples.map((e) => e.sql)).toEqual([`SELECT * FROM ${view}`]);
  });

  it('with --catalog, the view is judged by the tables it reads, as the broker did: nothing changes', async () => {
    expect(await dryRun('--catalog')).toMatchObject({ considered: 3, changed: 0, changes: [], catalog: { used: true } });
  });
});
