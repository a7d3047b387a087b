// Issue 10 on the real MariaDB, through the broker: under a read-only rule (default deny), stored functions are
// judged by the target's catalog — declared access and body — and views by what they read and call. Each bypass
// is refused and changes nothing; a NO SQL function and a plain view still run; a deny on a base table cannot be
// escaped through a view.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directMy, rowsOf, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

const RULES = `
rules:
  - { id: no-secret, tables: ["jit_my_cf_secret"], action: deny }
  - { id: ro, kinds: [read], action: allow }
default: deny
`;

const SETUP = `
DROP VIEW IF EXISTS jit_my_cf_v, jit_my_cf_plain, jit_my_cf_vsecret;
DROP FUNCTION IF EXISTS jit_my_cf_fw; DROP FUNCTION IF EXISTS jit_my_cf_sneaky; DROP FUNCTION IF EXISTS jit_my_cf_twice;
DROP TABLE IF EXISTS jit_my_cf_t, jit_my_cf_secret;
CREATE TABLE jit_my_cf_t (id INT, v VARCHAR(20));
INSERT INTO jit_my_cf_t VALUES (1, 'a'), (2, 'b');
CREATE TABLE jit_my_cf_secret (id INT, card VARCHAR(20));
INSERT INTO jit_my_cf_secret VALUES (1, '4111111111111111');
CREATE FUNCTION jit_my_cf_fw() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO jit_my_cf_t VALUES (99, 'fw'); RETURN 1; END;
CREATE FUNCTION jit_my_cf_sneaky() RETURNS INT READS SQL DATA BEGIN INSERT INTO jit_my_cf_t VALUES (98, 'sneaky'); RETURN 1; END;
CREATE FUNCTION jit_my_cf_twice(x INT) RETURNS INT DETERMINISTIC NO SQL RETURN x * 2;
CREATE VIEW jit_my_cf_v AS SELECT id, jit_my_cf_fw() AS f FROM jit_my_cf_t;
CREATE VIEW jit_my_cf_plain AS SELECT id, v FROM jit_my_cf_t;
CREATE VIEW jit_my_cf_vsecret AS SELECT id, card FROM jit_my_cf_secret;
`;

let t: MysqlTestBroker;
const count = async (): Promise<number> => Number((await rowsOf('SELECT COUNT(*) AS n FROM jit_my_cf_t'))[0]!.n);

beforeAll(async () => {
  await directMy((c) => c.query(SETUP));
  t = await startMysqlBroker(RULES);
});
afterAll(async () => {
  await t?.stop();
  await directMy((c) =>
    c.query(
      'DROP VIEW IF EXISTS jit_my_cf_v, jit_my_cf_plain, jit_my_cf_vsecret; DROP FUNCTION IF EXISTS jit_my_cf_fw; DROP FUNCTION IF EXISTS jit_my_cf_sneaky; DROP FUNCTION IF EXISTS jit_my_cf_twice; DROP TABLE IF EXISTS jit_my_cf_t, jit_my_cf_secret',
    ),
  );
});

describe('a read-only rule does not let functions and views write', () => {
  it.each([
    ['SELECT jit_my_cf_fw()', /declared MODIFIES SQL DATA/],
    ['DO jit_my_cf_fw()', /declared MODIFIES SQL DATA/],
    ['WITH x AS (SELECT jit_my_cf_fw()) SELECT * FROM x', /declared MODIFIES SQL DATA/],
    ['SELECT * FROM jit_my_cf_v', /view test\.jit_my_cf_v, which calls test\.jit_my_cf_fw\(\), declared MODIFIES SQL DATA/],
    ['SELECT jit_my_cf_sneaky()', /jit_my_cf_sneaky\(\), whose body runs a write statement/], // declared READS SQL DATA
  ])('%s is refused and changes nothing', async (sql, why) => {
    const before = await count();
    const c = await t.connect(await t.token());
    try {
      const err = await c.query(sql).then(
        () => null,
        (e: Error & { errno?: number; sqlState?: string }) => e,
      );
      expect(err).toMatchObject({ errno: 1227, sqlState: '42000' });
      expect(err!.message).toMatch(/^jit-broker: a write statement is denied by the default policy \(no rule matched\): it (calls|reads) /);
      expect(err!.message).toMatch(why);
      // The same through the binary protocol (COM_STMT_PREPARE).
      await expect(c.execute(sql)).rejects.toMatchObject({ errno: 1227 });
    } finally {
      await c.end();
    }
    expect(await count()).toBe(before);
  });

  it('the mariadb CLI sees the refusal with its reason, and the table is unchanged', async () => {
    const before = await count();
    const r = await t.cli(await t.token(), ['-N', 'app', '-e', 'SELECT jit_my_cf_fw()']);
    expect(r.stderr).toMatch(
      /ERROR 1227 \(42000\) at line 1: jit-broker: a write statement is denied by the default policy \(no rule matched\): it calls test\.jit_my_cf_fw\(\)/,
    );
    expect(await count()).toBe(before);
  });

  it('a DETERMINISTIC NO SQL function and a plain view still run', async () => {
    const c = await t.connect(await t.token());
    try {
      expect((await c.query('SELECT jit_my_cf_twice(21) AS x'))[0]).toEqual([{ x: 42 }]);
      expect((await c.query('SELECT id, v FROM jit_my_cf_plain ORDER BY id'))[0]).toEqual([
        { id: 1, v: 'a' },
        { id: 2, v: 'b' },
      ]);
      expect((await c.execute('SELECT jit_my_cf_twice(?) AS x', [5]))[0]).toEqual([{ x: 10 }]);
    } finally {
      await c.end();
    }
  });

  it('a deny on a base table cannot be escaped through a view', async () => {
    const c = await t.connect(await t.token());
    try {
      for (const sql of ['SELECT * FROM jit_my_cf_secret', 'SELECT * FROM jit_my_cf_vsecret', 'SELECT card FROM test.jit_my_cf_vsecret']) {
        const err = await c.query(sql).then(
          () => null,
          (e: Error & { errno?: number }) => e,
        );
        expect(err, sql).toMatchObject({ errno: 1227 });
        expect(err!.message, sql).toMatch(/rule 'no-secret'/);
      }
    } finally {
      await c.end();
    }
  });

  it('the refusals are recorded with the kinds the catalog gave them', async () => {
    await t.cli(await t.token({ build: 'build-my-cat' }), ['-N', 'app', '-e', 'SELECT * FROM jit_my_cf_v']);
    const [s] = await t.broker.store.listSessions({ build: 'build-my-cat' });
    const [st] = await t.broker.store.listStatements(s!.id);
    expect(st).toMatchObject({ sql: 'SELECT * FROM jit_my_cf_v', decision: 'deny', kinds: ['read', 'write'] });
  });
});
