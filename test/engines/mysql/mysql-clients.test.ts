// Real MySQL clients through a real broker against the real MariaDB: the mariadb CLI (-e and a piped script),
// mysql2 (text queries, prepared statements, transactions, multiple statements), mysqlslap; the sessions are
// recorded beside the PostgreSQL ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, run } from '../../support/broker.js';
import { CAP } from '../../../broker/engines/mysql/protocol.js';
import { directMy, greetingCapabilities, rowsOf, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

let t: MysqlTestBroker;
const TABLES = ['jit_my_cli', 'jit_my_tx', 'jit_my_ps', 'jit_my_multi', 'jit_my_slap'];

beforeAll(async () => {
  t = await startMysqlBroker();
  await directMy((c) =>
    c.query(
      TABLES.map(
        (n) => `DROP TABLE IF EXISTS ${n}; CREATE TABLE ${n} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO ${n} VALUES (1, 'one'), (2, 'two');`,
      ).join('\n'),
    ),
  );
});
afterAll(async () => {
  await t?.stop();
  await directMy((c) => c.query(TABLES.map((n) => `DROP TABLE IF EXISTS ${n};`).join('\n')));
});

const sessionsOf = async (build: string) => t.broker.store.listSessions({ build, limit: 100 });
const statementsOf = async (build: string) => {
  const out = [];
  for (const s of (await sessionsOf(build)).reverse()) out.push(...(await t.broker.store.listStatements(s.id)));
  return out;
};

describe('the mariadb CLI', () => {
  it('-e over TLS (the client default, no flags): the target name selects the upstream database', async () => {
    const token = await t.token({ build: 'build-my-cli' });
    const r = await t.cli(token, ['-N', '-B', 'app', '-e', 'SELECT DATABASE(), COUNT(*) FROM jit_my_cli']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('test\t2\n');
    // No rule here could allow LOAD DATA LOCAL INFILE (admin): CLIENT_LOCAL_FILES is not even offered.
    const caps = await greetingCapabilities(t.port);
    expect(caps & CAP.LOCAL_FILES).toBe(0);
    expect(caps & (CAP.SSL | CAP.PROTOCOL_41 | CAP.PLUGIN_AUTH | CAP.MULTI_STATEMENTS)).toBe(
      CAP.SSL | CAP.PROTOCOL_41 | CAP.PLUGIN_AUTH | CAP.MULTI_STATEMENTS,
    );
    expect(caps & CAP.DEPRECATE_EOF).toBe(0);
    const [s] = await sessionsOf('build-my-cli');
    expect(s).toMatchObject({ engine: 'mysql', target: 'app', tls: true, dbUser: 'ci', subject: 'ci:test' });
    expect(s!.clientApplication).toMatch(/mysql|mariadb/);
  });

  it('a piped script: statements run in order, refusals say which rule, `use app` stays on the target', async () => {
    const token = await t.token({ build: 'build-my-script' });
    const script = [
      "INSERT INTO jit_my_cli VALUES (3, 'three');",
      'use app',
      'SELECT v FROM jit_my_cli ORDER BY id;',
      'SELECT @@version_comment LIMIT 1;',
      'GRANT ALL ON *.* TO nobody;',
      'SELECT 42;',
    ].join('\n');
    const r = await t.cli(token, ['-N', '-B', '--force', 'app'], script);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['one', 'two', 'three']);
    expect(r.stdout).toContain('42');
    expect(r.stderr).toContain('ERROR 1227 (42000) at line 5: jit-broker: a privilege statement is denied by the default policy (no rule matched)');
    const st = await statementsOf('build-my-script');
    expect(st.map((s) => [s.sql, s.decision])).toEqual(
      expect.arrayContaining([
        ["INSERT INTO jit_my_cli VALUES (3, 'three')", 'allow'],
        ['USE `app`', 'allow'],
        ['GRANT ALL ON *.* TO nobody', 'deny'],
      ]),
    );
    expect(st.find((s) => s.sql.startsWith('INSERT'))).toMatchObject({ tag: 'OK, 1 affected', rows: 1, error: null });
    expect(st.find((s) => s.sql.startsWith('SELECT v'))).toMatchObject({ tag: '3 rows', rows: 3 });
  });

  it('a database other than the target is refused, by COM_INIT_DB or by a USE statement, and nothing changes', async () => {
    const token = await t.token({ build: 'build-my-initdb' });
    const viaInitDb = await t.cli(token, ['-N', 'app'], 'use mysql\nSELECT DATABASE();\n');
    expect(viaInitDb.stderr).toMatch(/ERROR 1044 \(42000\) at line 1: jit-broker: database `mysql` is outside target 'app'/);
    // The CLI sends `use` as COM_INIT_DB; a driver sends USE inside query text.
    const c = await t.connect(token, { multipleStatements: true });
    try {
      for (const sql of ['SELECT 1; USE mysql; SELECT DATABASE()', 'SELECT 1 /*!; USE `mysql` */', 'use/**/mysql']) {
        const err = await c.query(sql).catch((e: Error & { errno: number }) => e);
        expect(err).toMatchObject({
          errno: 1227,
          message: expect.stringContaining("jit-broker: USE `mysql` would leave target 'app': its connections stay in database `test`"),
        });
      }
      expect((await c.query('USE test; SELECT DATABASE() AS db'))[0]).toEqual([expect.anything(), [{ db: 'test' }]]);
    } finally {
      await c.end();
    }
    const unknown = await t.cli(token, ['-N', 'nosuch', '-e', 'SELECT 1']);
    expect(unknown.stderr).toMatch(/ERROR 1049 \(42000\): jit-broker: Unknown database 'nosuch'.*use one of: app/);
    const st = await statementsOf('build-my-initdb');
    expect(st.filter((s) => s.decision === 'deny').map((s) => s.ruleId)).toEqual(Array(4).fill('broker:confine'));
  });
});

describe('mysql2', () => {
  it('text queries, prepared statements (recorded at each execute), binary values and NULLs', async () => {
    const c = await t.connect(await t.token({ build: 'build-my2' }));
    try {
      const [rows] = await c.query('SELECT v FROM jit_my_ps WHERE id = ?', [2]);
      expect(rows).toEqual([{ v: 'two' }]);
      for (const id of [1, 2, 2]) {
        const [r] = await c.execute('SELECT id, v, NULL AS z, 1.5 AS d, ? + 1 AS n FROM jit_my_ps WHERE id = ?', [id, id]);
        expect(r).toEqual([{ id, v: id === 1 ? 'one' : 'two', z: null, d: '1.5', n: id + 1 }]);
      }
      const [ins] = await c.execute('INSERT INTO jit_my_ps VALUES (?, ?)', [10, 'ten']);
      expect(ins).toMatchObject({ affectedRows: 1 });
      await c.unprepare('SELECT id, v, NULL AS z, 1.5 AS d, ? + 1 AS n FROM jit_my_ps WHERE id = ?');
    } finally {
      await c.end();
    }
    const st = await statementsOf('build-my2');
    const executes = st.filter((s) => s.protocol === 'execute');
    expect(executes.map((s) => s.tag)).toEqual(['1 row', '1 row', '1 row', 'OK, 1 affected']);
    expect(st.filter((s) => s.protocol === 'parse')).toEqual([]); // allowed prepares are recorded when they run
  });

  it('a transaction commits and rolls back as on the server', async () => {
    const c = await t.connect(await t.token({ build: 'build-my-tx' }));
    try {
      await c.beginTransaction();
      await c.query("INSERT INTO jit_my_tx VALUES (3, 'three')");
      await c.rollback();
      await c.beginTransaction();
      await c.execute('UPDATE jit_my_tx SET v = ? WHERE id = ?', ['uno', 1]);
      await c.commit();
    } finally {
      await c.end();
    }
    expect(await rowsOf('SELECT id, v FROM jit_my_tx ORDER BY id')).toEqual([
      { id: 1, v: 'uno' },
      { id: 2, v: 'two' },
    ]);
  });

  it('multiple statements in one query: several result sets; one refused statement and none runs', async () => {
    const c = await t.connect(await t.token({ build: 'build-my-multi' }), { multipleStatements: true });
    try {
      const [sets] = await c.query("SELECT 1 AS a; INSERT INTO jit_my_multi VALUES (5, 'five'); SELECT v FROM jit_my_multi WHERE id = 5");
      expect(sets).toEqual([[{ a: 1 }], expect.objectContaining({ affectedRows: 1 }), [{ v: 'five' }]]);
      const err = await c.query("INSERT INTO jit_my_multi VALUES (6, 'six'); DROP DATABASE mysql").catch((e: Error & { errno: number; sqlState: string }) => e);
      expect(err).toMatchObject({
        errno: 1227,
        sqlState: '42000',
        message: expect.stringContaining('jit-broker: a destructive statement is denied by the default policy'),
      });
      expect((await c.query('SELECT 7 AS n'))[0]).toEqual([{ n: 7 }]); // the connection goes on
    } finally {
      await c.end();
    }
    expect(await rowsOf('SELECT id FROM jit_my_multi ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 5 }]);
    const st = await statementsOf('build-my-multi');
    expect(st[0]).toMatchObject({ tag: '1 row; OK, 1 affected; 1 row', rows: 2 });
  });
});

describe('mysqlslap', () => {
  it('runs its load through the broker, every statement recorded', async () => {
    const token = await t.token({ build: 'build-my-slap' });
    const r = await run('mysqlslap', [
      '-h',
      t.host,
      '-P',
      String(t.port),
      '-u',
      'ci',
      `-p${token}`,
      '--create-schema=app',
      '--concurrency=4',
      '--iterations=1',
      '--number-of-queries=200',
      '--query=SELECT v FROM jit_my_slap WHERE id = 1',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/Number of clients running queries: 4/);
    const st = await eventually(async () => {
      const all = await statementsOf('build-my-slap');
      const selects = all.filter((s) => s.sql === 'SELECT v FROM jit_my_slap WHERE id = 1' && s.tag === '1 row');
      return selects.length === 200 ? all : null;
    });
    expect(st.every((s) => s.decision === 'allow')).toBe(true);
  });
});

describe('recorded sessions', () => {
  it('jit sessions --build lists MySQL sessions beside PostgreSQL ones, with the engine', async () => {
    const token = await t.token({ build: 'build-123' });
    const my = await t.cli(token, ['app', '-e', 'SELECT 1']);
    expect(my.stderr).toBe('');
    const pgr = await run('psql', ['-X', '-c', 'SELECT 1'], {
      PGPASSWORD: token,
      PGSSLMODE: 'require',
      PGHOST: t.host,
      PGPORT: String(t.pgPort),
      PGUSER: 'ci',
      PGDATABASE: 'pg',
    });
    expect(pgr.stderr).toBe('');
    await eventually(async () => (await sessionsOf('build-123')).every((s) => s.endedAt));
    const table = await run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'sessions', '--build', 'build-123']);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SESSION\s+SUBJECT\s+BUILD\s+TARGET\s+ENGINE\s+CLIENT/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(2, 5))).toEqual([
      ['build-123', 'pg', 'postgres'],
      ['build-123', 'app', 'mysql'],
    ]);
  });
});
