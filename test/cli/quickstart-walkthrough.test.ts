// The README's quick start, step by step, as a user walks it: `jit start` in an empty folder, a psql
// session whose SELECT comes back masked and whose DROP waits for `jit approve` from another shell (no
// flags, no variables: the admin token the broker generated under .jit/), a TRUNCATE denied with
// `jit deny`, then `jit replay` of that session.
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CUSTOMERS } from '../../broker/demo/seed.js';
import { eventually, run, type RunResult } from '../support/broker.js';
import { startQuickstart, type Quickstart } from '../support/quickstart.js';

const PG_PORT = 46532;
const HTTP_PORT = 48180;
// Ports of their own (the other quickstart test may run at the same time); no admin token from outside.
const env = {
  JIT_LISTEN_POSTGRES: `127.0.0.1:${PG_PORT}`,
  JIT_LISTEN_HTTP: `127.0.0.1:${HTTP_PORT}`,
  JIT_LISTEN_MYSQL: '127.0.0.1:46133',
  JIT_DEMO_UPSTREAM: '',
  JIT_ADMIN_TOKEN: '',
};
const PSQL = { PGHOST: '127.0.0.1', PGPORT: String(PG_PORT), PGDATABASE: 'app', PGUSER: 'ci', PGSSLMODE: 'require' };
const me = `cli:${userInfo().username}`;
let q: Quickstart;
let dir: string;

/** `npx jit …` in the quick start's folder. */
const jit = (...args: string[]) => q.jit(...args);

/** psql reading what a user types, line by line, until `end()`. */
function psqlSession(password: string) {
  const c = spawn('psql', ['-X', '-v', 'VERBOSITY=verbose'], { cwd: dir, env: { ...process.env, ...PSQL, PGPASSWORD: password } });
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<RunResult>((done) => c.on('exit', (code) => done({ code: code ?? 1, stdout, stderr })));
  return {
    type: (line: string) => void c.stdin.write(`${line}\n`),
    end: () => {
      c.stdin.end();
      return exited;
    },
  };
}

/** The one pending request `jit approvals` (no flags) shows, once it shows one for `sql`. */
async function pendingFor(sql: string): Promise<{ id: string; line: string }> {
  return eventually(async () => {
    const r = await jit('approvals');
    const line = r.stdout.split('\n').find((l) => l.includes(sql));
    const id = line && /\ba_[0-9a-z]+\b/.exec(line)?.[0];
    return id ? { id, line } : null;
  }, 30_000);
}

beforeAll(async () => {
  q = await startQuickstart(env, 'jit-walkthrough-');
  dir = q.dir;
}, 90_000);

afterAll(() => q?.stop());

describe('the README quick start on the embedded default', () => {
  let sessionId = '';
  let psqlOut: RunResult;

  it('tells the user how to decide held statements when it starts', () => {
    expect(q.log()).toContain('npx jit approvals, then npx jit approve ID or npx jit deny ID --reason');
  });

  it('keeps a generated admin token under .jit/, readable by its owner only', () => {
    const file = join(dir, '.jit', 'admin.token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim().length).toBeGreaterThanOrEqual(32);
  });

  it('psql: a masked SELECT; a DROP held until `jit approve ID`; a TRUNCATE refused by `jit deny ID --reason`', async () => {
    const token = (await jit('token', '--build', 'build-123')).stdout.trim();
    const psql = psqlSession(token);
    psql.type('SELECT name, email, card_number, phone FROM customers ORDER BY id LIMIT 3;');
    psql.type('DROP TABLE orders;');

    // From another shell: the held DROP is listed with who asked for it and the statement.
    const drop = await pendingFor('DROP TABLE orders');
    expect(drop.line).toMatch(/\bapp\b.*\blocal:.*\bbuild-123\b.*\bdestructive\b.*\bdestructive-needs-approval\b/);
    expect((await jit('approve', drop.id)).stdout).toBe(`${drop.id}: approved by ${me}\n`);

    // The DROP has run (psql goes on to the next statement, held in turn); deny that one.
    psql.type('TRUNCATE customers;');
    const truncate = await pendingFor('TRUNCATE customers');
    expect((await jit('deny', truncate.id, '--reason', 'not the customers table')).stdout).toBe(`${truncate.id}: denied by ${me} (not the customers table)\n`);
    expect((await jit('approvals')).stdout).toBe('no pending approvals\n');

    psqlOut = await psql.end();
    expect(psqlOut.code).toBe(0);
    const rows = psqlOut.stdout.split('\n').filter((l) => l.includes('|'));
    expect(rows.map((l) => l.split('|').map((c) => c.trim()))).toEqual([
      ['name', 'email', 'card_number', 'phone'],
      ['Ava Thompson', 'a***@e***.com', '************1111', '**-***-***-0101'],
      ['Liam Okafor', 'l***@e***.com', '************4444', '**-***-***-0102'],
      ['Sofia Marquez', 's***@e***.com', '************1881', '**-***-***-0103'],
    ]);
    expect(psqlOut.stdout).toContain('DROP TABLE');
    expect(psqlOut.stderr).toContain(`ERROR:  42501: jit-broker: denied by ${me} (reason: not the customers table)`);
    expect(psqlOut.stdout).not.toContain('TRUNCATE TABLE');

    // The table is gone; the customers are all still there.
    const check = await run('psql', ['-X', '-A', '-t', '-c', "SELECT to_regclass('public.orders') IS NULL, (SELECT count(*) FROM customers)"], {
      ...PSQL,
      PGPASSWORD: token,
    });
    expect(check.stdout.trim()).toBe('t|20');
  });

  it('`jit sessions` finds the session and `jit replay` shows the masked SELECT, who approved the DROP and who denied the TRUNCATE', async () => {
    const sessions = JSON.parse((await jit('sessions', '--build', 'build-123', '--json')).stdout) as { id: string; statementCount: number }[];
    const walk = sessions.find((s) => s.statementCount === 3);
    expect(walk).toBeDefined();
    sessionId = walk!.id;
    const r = await jit('replay', sessionId);
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/#1 .* allow {2}rule day-to-day {2}read\n {4}SELECT name, email, card_number, phone FROM customers/);
    expect(out).toMatch(/Ava Thompson +\| a\*\*\*@e\*\*\*\.com +\| \*{12}1111 +\| \*\*-\*\*\*-\*\*\*-0101/);
    expect(out).toMatch(
      new RegExp(
        `#2 .* review {2}rule destructive-needs-approval {2}destructive\\n {4}DROP TABLE orders;\\n {2}approval a_\\w+ \\(rule destructive-needs-approval\\): approved by ${me} at `,
      ),
    );
    expect(out).toMatch(/→ DROP TABLE /);
    expect(out).toMatch(new RegExp(`#3 .*\\n {4}TRUNCATE customers;\\n {2}approval a_\\w+ .*: denied by ${me} at .*\\(reason: not the customers table\\)`));
  });

  it('no raw e-mail, card number or phone number of the demo data reached the client or the record', async () => {
    const replay = (await jit('replay', sessionId, '--json')).stdout;
    for (const c of DEMO_CUSTOMERS.slice(0, 3)) {
      for (const raw of [c.email, c.card_number, c.phone]) {
        expect(psqlOut.stdout).not.toContain(raw);
        expect(replay).not.toContain(raw);
      }
    }
  });
});
