// `jit policy apply FILE --dry-run` on a MySQL target (MariaDB): SQL-level prepared statements are read as the
// session prepared them, and what the broker refused outside the rules (a USE of another database) is listed apart.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, run } from '../support/broker.js';
import { directMy, MYSQL_RULES, startMysqlBroker, type MysqlTestBroker } from '../support/mysql.js';

let t: MysqlTestBroker;
const table = `jit_my_dryrun_${process.pid}`;

interface Report {
  considered: number;
  changed: number;
  skipped: Record<string, number>;
  changes: { from: { action: string; ruleId: string | null }; to: { action: string; ruleId: string | null }; count: number; examples: { sql: string }[] }[];
}

const dryRun = async (rules: string): Promise<Report> => {
  const policy = join(t.dir, 'policy.yaml');
  writeFileSync(policy, rules);
  const r = await run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'policy', 'apply', policy, '--dry-run', '--json', '--target', 'app']);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Report;
};

beforeAll(async () => {
  await directMy((c) => c.query(`CREATE TABLE IF NOT EXISTS ${table} (id int)`));
  t = await startMysqlBroker();
  const c = await t.connect(await t.token({ build: 'build-m' }));
  await c.query(`PREPARE s FROM 'DELETE FROM ${table}'`);
  await c.query('EXECUTE s');
  await expect(c.query('USE mysql')).rejects.toThrow();
  await c.end();
  await eventually(async () => (await t.broker.store.listSessions({ target: 'app' }))[0]?.statementCount === 3);
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await directMy((c) => c.query(`DROP TABLE IF EXISTS ${table}`));
});

describe('jit policy apply --dry-run on a MySQL target', () => {
  it("the same rules change nothing: EXECUTE s is the DELETE the session prepared; the broker's own refusal is apart", async () => {
    expect(await dryRun(MYSQL_RULES)).toMatchObject({ considered: 2, changed: 0, skipped: { 'broker:confine': 1 } });
  });

  it('rules that hold destructive statements for review change the PREPARE and the EXECUTE', async () => {
    const report = await dryRun(`rules:\n  - { id: careful, kinds: [destructive], action: review }\n${MYSQL_RULES.replace('rules:\n', '')}`);
    expect(report).toMatchObject({ considered: 2, changed: 2 });
    expect(report.changes).toHaveLength(1);
    expect(report.changes[0]).toMatchObject({ from: { action: 'allow', ruleId: 'scratch' }, to: { action: 'review', ruleId: 'careful' }, count: 2 });
    expect(report.changes[0]!.examples.map((e) => e.sql)).toEqual([`PREPARE s FROM 'DELETE FROM ${table}'`, 'EXECUTE s']);
  });
});
