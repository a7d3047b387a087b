// Issue 11, MySQL/MariaDB: what real clients send unchanged now runs through the broker — a mariadb-dump taken
// under a read-only rule and restored with the mariadb CLI under a ddl+write rule (identical rows), the connect
// statements of MariaDB Connector/J and Rails, SQL-level PREPARE/EXECUTE, `USE <target>` — while what the
// classifier cannot follow (ANSI_QUOTES, EXECUTE of a statement it never saw) is still refused, saying why.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../broker/config.js';
import { startBroker } from '../../../broker/main.js';
import { run } from '../../support/broker.js';
import { directMy, MYSQL_UPSTREAM, rowsOf, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

let t: MysqlTestBroker;
const DUMPED = 'jit_my_dump';
const PS = 'jit_my_prep';

const RULES = `
rules:
  - { id: restore, builds: ["restore-*"], kinds: [read, write, ddl], action: allow }
  - { id: read-only, builds: ["ro-*"], kinds: [read], action: allow }
  - { id: only-reads, builds: ["ro-*"], action: deny }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;

beforeAll(async () => {
  t = await startMysqlBroker(RULES);
  await directMy((c) =>
    c.query(`
      DROP TABLE IF EXISTS ${DUMPED}; DROP TABLE IF EXISTS ${PS};
      CREATE TABLE ${DUMPED} (id INT AUTO_INCREMENT PRIMARY KEY, s TEXT, b VARBINARY(16), n DECIMAL(10,2), d DATETIME) DEFAULT CHARSET=utf8mb4;
      SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO');
      INSERT INTO ${DUMPED} VALUES
        (0, 'zero id, kept by NO_AUTO_VALUE_ON_ZERO', NULL, 0, '2024-01-01 00:00:00'),
        (1, 'quote '' backslash \\\\ double " semicolon ; comment -- /* */', X'00FF5C27', -1.5, NULL),
        (2, 'ünïcödé ✓ 🐬', '', 123456.78, '1999-12-31 23:59:59'),
        (3, NULL, NULL, NULL, NULL);
      CREATE TABLE ${PS} (id INT PRIMARY KEY, v VARCHAR(20));
      INSERT INTO ${PS} VALUES (1, 'one'), (2, 'two');`),
  );
});
afterAll(async () => {
  await t?.stop();
  await directMy((c) => c.query(`DROP TABLE IF EXISTS ${DUMPED}; DROP TABLE IF EXISTS ${PS};`));
});

const statementsOf = async (build: string) => {
  const out = [];
  for (const s of (await t.broker.store.listSessions({ build, limit: 100 })).reverse()) out.push(...(await t.broker.store.listStatements(s.id)));
  return out;
};

describe('mariadb-dump, then a restore with the mariadb CLI', () => {
  it('a table dumped under a read-only rule and restored under ddl+write comes back with identical rows', async () => {
    const before = await rowsOf(`SELECT * FROM ${DUMPED} ORDER BY id`);
    const dumpToken = await t.token({ build: 'ro-dump' });
    // No LOCK TABLES (a write to the classifier): a consistent snapshot instead; no DROP TABLE (destructive).
    const file = join(t.dir, 'dump.sql');
    const login = ['-h', t.host, '-P', String(t.port), '-u', 'ci'];
    const dump = await run('mariadb-dump', [
      ...login,
      `-p${dumpToken}`,
      '--single-transaction',
      '--skip-add-drop-table',
      `--result-file=${file}`,
      'app',
      DUMPED,
    ]);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    const text = readFileSync(file, 'latin1');
    expect(text.split('\n')[0]).toMatch(/^\/\*M!999999\\- enable the sandbox mode \*\//);
    expect(text).toContain("SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO'");
    expect(text).toContain('SET SQL_MODE=@OLD_SQL_MODE');
    expect(text).toContain('SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT');

    await directMy((c) => c.query(`DROP TABLE ${DUMPED}`));
    const restoreToken = await t.token({ build: 'restore-1' });
    // The file as it is, bytes and all, on the CLI's standard input.
    const restored = await run('sh', ['-c', 'exec mariadb "$@" < "$DUMP"', 'mariadb', ...login, `-p${restoreToken}`, 'app'], { DUMP: file });
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(await rowsOf(`SELECT * FROM ${DUMPED} ORDER BY id`)).toEqual(before);

    const st = await statementsOf('restore-1');
    expect(st.filter((s) => s.decision !== 'allow')).toEqual([]);
    // The settings it restores from user variables were set after writes (a trigger could have changed them):
    // the broker asked the server what they became, and the session went on.
    expect(st.map((s) => s.sql)).toEqual(
      expect.arrayContaining(['/*!40101 SET SQL_MODE=@OLD_SQL_MODE */', '/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */']),
    );
  });
});

describe('connect-time statements of real drivers (sent by mysql2, as the drivers write them)', () => {
  it('MariaDB Connector/J and Rails: sql_mode computed from @@sql_mode is known, so what follows is read under it', async () => {
    const c = await t.connect(await t.token({ build: 'drivers' }));
    try {
      await c.query("set autocommit=1, sql_mode = concat(@@sql_mode, ',STRICT_TRANS_TABLES')");
      await c.query("SET NAMES utf8mb4,  @@SESSION.sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'),  @@SESSION.wait_timeout = 2147483");
      // Rails with strict: false
      await c.query(
        "SET NAMES utf8mb4,  @@SESSION.sql_mode = CONCAT(REPLACE(REPLACE(REPLACE(@@sql_mode, 'STRICT_TRANS_TABLES', ''), 'STRICT_ALL_TABLES', ''), 'TRADITIONAL', ''), ',NO_AUTO_VALUE_ON_ZERO'),  @@SESSION.wait_timeout = 2147483",
      );
      const [rows] = await c.query('SELECT @@sql_mode AS m, @@character_set_client AS cs');
      expect(rows).toEqual([{ m: expect.stringContaining('NO_AUTO_VALUE_ON_ZERO'), cs: 'utf8mb4' }]);
      expect((rows as { m: string }[])[0]!.m).not.toContain('STRICT_ALL_TABLES');
      const [[one]] = (await c.query(`SELECT v FROM ${PS} WHERE id = 1`)) as unknown as [Record<string, unknown>[]];
      expect(one).toEqual({ v: 'one' });
    } finally {
      await c.end();
    }
  });

  it('an sql_mode with ANSI_QUOTES is still refused, and the refusal names it; so is one reached through a variable', async () => {
    const c = await t.connect(await t.token({ build: 'ansi' }), { multipleStatements: true });
    try {
      const before = ((await c.query('SELECT @@sql_mode AS m')) as unknown as [{ m: string }[]])[0][0]!.m;
      await expect(c.query("SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")).rejects.toMatchObject({
        errno: 1227,
        message: expect.stringMatching(/unknown statement .*ANSI_QUOTES: "…" becomes a name/),
      });
      await expect(c.query("SET @m = 'ANSI'; SET sql_mode = @m")).rejects.toMatchObject({
        message: expect.stringMatching(/ANSI: it includes ANSI_QUOTES.* — statement 2 of 2: SET sql_mode = @m/),
      });
      expect(((await c.query('SELECT @@sql_mode AS m')) as unknown as [{ m: string }[]])[0][0]!.m).toBe(before);
    } finally {
      await c.end();
    }
  });

  it('a value the broker cannot know is read back from the server: ANSI_QUOTES set that way stops every later statement', async () => {
    const c = await t.connect(await t.token({ build: 'ansi-late' }));
    try {
      await c.query("SET @m = 'ANSI_QUOTES'");
      await c.query(`UPDATE ${PS} SET v = v WHERE id = 1`); // a write: a trigger could set @m, so its value is no longer known
      await c.query('SET sql_mode = @m'); // runs; the broker then asks the server what sql_mode became
      await expect(c.query('SELECT 1')).rejects.toMatchObject({
        errno: 1227,
        message: expect.stringMatching(/the session's sql_mode 'ANSI_QUOTES' makes the server read statements differently.*reconnect/),
      });
    } finally {
      await c.end();
    }
    // A safe value reached the same way: the session goes on.
    const d = await t.connect(await t.token({ build: 'late-safe' }));
    try {
      await d.query("SET @m = 'STRICT_ALL_TABLES'");
      await d.query(`UPDATE ${PS} SET v = v WHERE id = 1`);
      await d.query('SET sql_mode = @m');
      expect((await d.query('SELECT @@sql_mode AS m'))[0]).toEqual([{ m: 'STRICT_ALL_TABLES' }]);
    } finally {
      await d.end();
    }
  });
});

describe('SQL-level PREPARE / EXECUTE with the mariadb CLI', () => {
  it('EXECUTE runs what was PREPAREd in the same session, with the kinds recorded at PREPARE', async () => {
    const token = await t.token({ build: 'ro-prepare' });
    const r = await t.cli(
      token,
      ['-N', '-B', 'app'],
      `PREPARE s FROM 'SELECT ? + 1';\nSET @i = 1;\nEXECUTE s USING @i;\nSET @q = 'SELECT v FROM ${PS} WHERE id = ?';\nPREPARE q FROM @q;\nEXECUTE q USING @i;\nDEALLOCATE PREPARE q;\n`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('2\none\n');
  });

  it('a PREPAREd DELETE under a read-only rule is refused, at PREPARE and at EXECUTE, and nothing changes', async () => {
    const token = await t.token({ build: 'ro-delete' });
    const script = [
      `PREPARE d FROM 'DELETE FROM ${PS}';`,
      'EXECUTE d;',
      `SET @q = 'DELETE FROM ${PS} WHERE id = 1';`,
      'PREPARE d2 FROM @q;',
      'EXECUTE d2;',
      `PREPARE s FROM 'SELECT 1'; DEALLOCATE PREPARE s; EXECUTE s;`,
    ].join('\n');
    const r = await t.cli(token, ['-N', '-B', '--force', 'app'], script);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR'));
    expect(errors[0]).toMatch(/ERROR 1227 \(42000\) at line 1: jit-broker: a destructive statement is denied by rule 'only-reads'/);
    expect(errors[1]).toMatch(
      /at line 2: jit-broker: an unknown statement is denied by rule 'only-reads': dynamic SQL: EXECUTE of d, a statement this session has not PREPAREd through the broker/,
    );
    expect(errors[2]).toMatch(/at line 4: jit-broker: a write statement is denied by rule 'only-reads'/);
    expect(errors[3]).toMatch(/at line 5: .*dynamic SQL: EXECUTE of d2/);
    expect(errors[4]).toMatch(/at line 6: .*dynamic SQL: EXECUTE of s/);
    expect(errors).toHaveLength(5);
    expect(await rowsOf(`SELECT id FROM ${PS} ORDER BY id`)).toEqual([{ id: 1 }, { id: 2 }]);
  });
});

describe('the target name inside SQL', () => {
  it('USE <target> as a statement of its own is the upstream database; within several statements it is refused, saying so', async () => {
    const c = await t.connect(await t.token({ build: 'use-target' }), { multipleStatements: true });
    try {
      await c.query('USE app');
      expect((await c.query('SELECT DATABASE() AS db'))[0]).toEqual([{ db: 'test' }]);
      await c.query('use `app` ;');
      await expect(c.query('SELECT 1; USE app')).rejects.toMatchObject({
        errno: 1227,
        message: expect.stringContaining('USE `app` is taken as the upstream database `test` only as a statement of its own'),
      });
      await expect(c.query('USE app /*!; SELECT 1 */')).rejects.toMatchObject({ errno: 1227 });
    } finally {
      await c.end();
    }
    const st = await statementsOf('use-target');
    expect(st.slice(0, 2).map((s) => [s.sql, s.decision, s.tag])).toEqual([
      ['USE app', 'allow', 'OK, 0 affected'],
      ['SELECT DATABASE() AS db', 'allow', '1 row'],
    ]);
  });

  it('at start, the broker warns of a mysql target named other than its upstream database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jit-my-names-'));
    const logs: { level: number; msg: string; target?: string }[] = [];
    const text = `data_dir: .jit\nstore: sqlite:.jit/jit.db\nlisten: { postgres: null, mysql: 127.0.0.1:0, http: null }\ntargets:\n  shop: { engine: mysql, upstream: "${MYSQL_UPSTREAM}" }\n  test: { engine: mysql, upstream: "${MYSQL_UPSTREAM}" }\n`;
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) });
    const broker = await startBroker(parseConfig(text, { file: join(dir, 'jit.yaml'), baseDir: dir }), { logger });
    try {
      const named = logs.filter((l) => /its upstream database is named/.test(l.msg));
      expect(named).toEqual([
        expect.objectContaining({ level: 40, target: 'shop', msg: expect.stringContaining('target shop: its upstream database is named "test"; inside SQL') }),
      ]);
    } finally {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
