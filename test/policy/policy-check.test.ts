// `jit policy check`: the policy's decisions, printed for whoever writes the policy, without a database.
import { describe, expect, it } from 'vitest';
import { run } from '../support/broker.js';

const check = (...args: string[]) =>
  run(process.execPath, ['bin/jit.js', '--config', 'test/fixtures/policy.yaml', 'policy', 'check', '--target', 'app', ...args]);
const checkStdin = (sql: string, ...args: string[]) =>
  run(process.execPath, ['bin/jit.js', '--config', 'test/fixtures/policy.yaml', 'policy', 'check', '--target', 'app', ...args], {}, sql);

describe('jit policy check', () => {
  it('prints the decision, rule and kinds of each statement and of the whole string', async () => {
    const r = await check('SELECT * FROM orders; DROP TABLE orders');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^DECISION\s+RULE\s+KINDS\s+STATEMENT$/);
    expect(lines[1]).toMatch(/^allow\s+reads\s+read\s+SELECT \* FROM orders$/);
    expect(lines[2]).toMatch(/^review\s+prod-destructive\s+destructive\s+DROP TABLE orders$/);
    expect(lines[3]).toBe("=> review (rule prod-destructive): a destructive statement needs approval under rule 'prod-destructive'");
  });

  it('matches identity claims given with --claim, and prints JSON with --json', async () => {
    const without = JSON.parse((await check('--json', 'UPDATE orders SET paid = true WHERE id = 1')).stdout) as { action: string; ruleId: string | null };
    expect(without).toMatchObject({ action: 'deny', ruleId: null });
    const main = JSON.parse((await check('--json', '--claim', 'ref=refs/heads/main', 'UPDATE orders SET paid = true WHERE id = 1')).stdout) as {
      action: string;
      ruleId: string;
      kinds: string[];
      statements: { tables: string[] }[];
    };
    expect(main).toMatchObject({ action: 'allow', ruleId: 'ci-main-writes', kinds: ['write'] });
    expect(main.statements[0]!.tables).toEqual(['orders']);
  });

  it('shows a custom rule message, and reads the SQL from standard input', async () => {
    const r = await checkStdin("SELECT pg_read_file('/etc/passwd')");
    expect(r.stdout).toContain('=> deny (rule no-admin): admin statements are not allowed through the broker');
  });

  it('--expect makes it a CI check: exit 1 when the decision differs', async () => {
    expect((await check('--expect', 'allow', 'SELECT 1')).code).toBe(0);
    const r = await check('--expect', 'allow', 'TRUNCATE orders');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('expected allow, got review');
  });

  it('an unparseable statement is unknown and its parse error is shown', async () => {
    const r = await check('SELEC 1');
    expect(r.stdout).toMatch(/review\s+prod-destructive\s+unknown\s+SELEC 1/);
    expect(r.stdout).toContain('parse error: syntax error at or near "SELEC"');
  });

  it('an unknown target is a clear error', async () => {
    const r = await run(process.execPath, ['bin/jit.js', '--config', 'test/fixtures/policy.yaml', 'policy', 'check', '--target', 'nope', 'SELECT 1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no target 'nope'");
  });
});
