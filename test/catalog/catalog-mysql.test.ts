// loadMysqlCatalog against the real MariaDB: stored functions with their declared access and the body as the server
// runs it (not ROUTINE_DEFINITION's unescaped copy), views with their definition and base tables, and a catalog
// that cannot be read is an error (the provider then fails closed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMysqlCatalog } from '../../broker/catalog/mysql.js';
import type { CatalogSnapshot } from '../../broker/catalog/types.js';
import { classify } from '../../broker/policy/index.js';
import { refineMysql } from '../../broker/policy/mysql-catalog.js';
import { directMy, MYSQL_UPSTREAM } from '../support/mysql.js';

const target = { name: 'app', engine: 'mysql' as const, upstream: MYSQL_UPSTREAM };
let snap: CatalogSnapshot;

const SETUP = `
DROP VIEW IF EXISTS jit_my_cat_v2, jit_my_cat_v;
DROP FUNCTION IF EXISTS jit_my_cat_fw; DROP FUNCTION IF EXISTS jit_my_cat_twice; DROP FUNCTION IF EXISTS jit_my_cat_esc;
DROP PROCEDURE IF EXISTS jit_my_cat_p;
DROP TABLE IF EXISTS jit_my_cat_t;
CREATE TABLE jit_my_cat_t (id INT, v VARCHAR(20));
CREATE FUNCTION jit_my_cat_fw() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO jit_my_cat_t VALUES (9, 'fw'); RETURN 1; END;
CREATE FUNCTION jit_my_cat_twice(x INT) RETURNS INT DETERMINISTIC NO SQL RETURN x * 2;
CREATE PROCEDURE jit_my_cat_p() DELETE FROM jit_my_cat_t;
CREATE VIEW jit_my_cat_v AS SELECT id, jit_my_cat_fw() AS f FROM jit_my_cat_t;
CREATE VIEW jit_my_cat_v2 AS SELECT * FROM jit_my_cat_v;
`;
// Seen through ROUTINE_DEFINITION ('\\\\' shown as '\\'), the INSERT would sit inside a string.
const ESCAPED = String.raw`CREATE FUNCTION jit_my_cat_esc() RETURNS INT READS SQL DATA BEGIN SET @a = '\\'; INSERT INTO jit_my_cat_t VALUES (1, 'esc'); SET @b = '\\'; RETURN 1; END`;

beforeAll(async () => {
  await directMy(async (c) => {
    await c.query(SETUP);
    await c.query(ESCAPED);
  });
  snap = await loadMysqlCatalog(target);
});
afterAll(async () => {
  await directMy((c) =>
    c.query(
      'DROP VIEW IF EXISTS jit_my_cat_v2, jit_my_cat_v; DROP FUNCTION IF EXISTS jit_my_cat_fw; DROP FUNCTION IF EXISTS jit_my_cat_twice; DROP FUNCTION IF EXISTS jit_my_cat_esc; DROP PROCEDURE IF EXISTS jit_my_cat_p; DROP TABLE IF EXISTS jit_my_cat_t',
    ),
  );
});

describe('loadMysqlCatalog', () => {
  it('reads stored functions and procedures with their declared access, determinism, arity and body', () => {
    expect(snap.dialect).toBe('mysql');
    expect(snap.functions.get('jit_my_cat_fw')).toEqual([
      expect.objectContaining({
        schema: 'test',
        prokind: 'f',
        volatility: 'v',
        language: 'SQL',
        dataAccess: 'MODIFIES SQL DATA',
        args: [0, 0],
        body: "BEGIN INSERT INTO jit_my_cat_t VALUES (9, 'fw'); RETURN 1; END",
      }),
    ]);
    expect(snap.functions.get('jit_my_cat_twice')).toEqual([
      expect.objectContaining({ volatility: 'i', dataAccess: 'NO SQL', args: [1, 1], body: 'RETURN x * 2' }),
    ]);
    expect(snap.functions.get('jit_my_cat_p')).toEqual([expect.objectContaining({ prokind: 'p', body: 'DELETE FROM jit_my_cat_t' })]);
  });

  it('takes the body as written, so an escaped quote cannot hide a statement', () => {
    const [f] = snap.functions.get('jit_my_cat_esc')!;
    expect(f!.body).toBe(String.raw`BEGIN SET @a = '\\'; INSERT INTO jit_my_cat_t VALUES (1, 'esc'); SET @b = '\\'; RETURN 1; END`);
    const st = refineMysql(classify('mysql', 'SELECT jit_my_cat_esc()'), snap).statements[0]!;
    expect(st.kinds).toEqual(['read', 'write']);
  });

  it('reads views with their definition and base tables, views of views followed', () => {
    const [v] = snap.views.get('jit_my_cat_v')!;
    expect(v).toMatchObject({ schema: 'test', tables: ['test.jit_my_cat_t'] });
    expect(v!.definition).toContain('`jit_my_cat_fw`() AS `f`'); // a function of the view's own schema
    expect(snap.views.get('jit_my_cat_v2')![0]!.tables).toEqual(['test.jit_my_cat_t']);
    const st = refineMysql(classify('mysql', 'SELECT * FROM jit_my_cat_v2'), snap).statements[0]!;
    expect(st).toMatchObject({
      kinds: ['read', 'write'],
      reason: 'it reads view test.jit_my_cat_v2, which reads view test.jit_my_cat_v, which calls test.jit_my_cat_fw(), declared MODIFIES SQL DATA',
    });
  });

  it('knows the server’s own views and functions too (sys, mysql.user)', () => {
    expect(snap.views.get('user')?.find((v) => v.schema === 'mysql')?.tables).toEqual(['mysql.global_priv']);
  });

  it('an unreachable server or a wrong password is an error, not an empty catalog', async () => {
    await expect(loadMysqlCatalog({ ...target, upstream: 'mysql://root@127.0.0.1:1/test' })).rejects.toThrow(/ECONNREFUSED/);
    await expect(loadMysqlCatalog({ ...target, upstream: 'mysql://nobody:wrong@127.0.0.1:3306/test' })).rejects.toThrow(/Access denied/);
  });
});
