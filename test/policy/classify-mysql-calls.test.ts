// The functions a MySQL statement calls (ClassifiedStatement.calls): every call that is not certainly a built-in,
// wherever it is (CTE, subquery, DO, SET, PREPARE … FROM '…'), and, checked against the real MariaDB, every way of
// writing a call that reaches a stored function is listed (`now ()`, `` `count`() ``, `db.md5()`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyMysql } from '../../broker/policy/classify-mysql.js';
import { classify } from '../../broker/policy/index.js';
import { directMy } from '../support/mysql.js';

const calls = (sql: string): string[] =>
  classifyMysql(sql).statements.flatMap((s) => (s.calls ?? []).map((r) => `${r.schema ? `${r.schema}.` : ''}${r.name}/${r.args ?? '?'}`));

describe('calls', () => {
  it.each([
    ['SELECT fw()', ['fw/0']],
    ['DO fw(1)', ['fw/1']],
    ['SET @x = fw(1, 2, 3)', ['fw/3']],
    ['WITH x AS (SELECT fw()) SELECT * FROM x', ['fw/0']],
    ['SELECT * FROM t WHERE a IN (SELECT fw(b) FROM u)', ['fw/1']],
    ['INSERT INTO t (a, b) VALUES (1, fw())', ['fw/0']],
    ['UPDATE t SET a = fw(a) WHERE id = 1', ['fw/1']],
    ['SHOW TABLES WHERE fw()', ['fw/0']],
    ["PREPARE s FROM 'SELECT fw()'", ['fw/0']],
    ['EXPLAIN SELECT fw()', ['fw/0']],
    ['CREATE TABLE t2 (a INT) SELECT fw() AS a', ['fw/0']],
    ['SELECT shop.fw(1), `shop` . `g` (1, 2)', ['shop.fw/1', 'shop.g/2']],
    ['SELECT test.md5(1)', ['test.md5/1']], // qualified: a stored function, whatever its name
    ['SELECT now (), `count`(1), `concat`(1)', ['now/0', 'count/1']], // `concat` is the built-in however written
    ['SELECT 1 /*!99999 , fw() */', ['fw/0']], // only where the comment runs
  ])('%s', (sql, expected) => {
    expect(calls(sql).sort()).toEqual([...expected].sort());
  });

  it.each([
    'SELECT now(), count(*), concat(a, b), IF (a, 1, 2), CAST(a AS DECIMAL(10,2)), CONVERT(b, CHAR(3)) FROM t',
    "SELECT DATE_ADD(a, INTERVAL 1 DAY), EXTRACT(YEAR FROM a), TRIM(BOTH 'x' FROM a), GROUP_CONCAT(a SEPARATOR ',') FROM t",
    'INSERT INTO t (a) VALUES (1)',
    'INSERT LOW_PRIORITY IGNORE db.t(a) SELECT x FROM y',
    'REPLACE INTO db.t (a) VALUES (1)',
    'WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3) SELECT * FROM c',
    'SELECT ROW_NUMBER() OVER (PARTITION BY a) FROM t WINDOW w AS (ORDER BY a)',
    "SELECT MATCH (a) AGAINST ('x') FROM t",
    'CREATE TABLE t2 (id INT, v VARCHAR(20))',
    'CALL p(fw())', // CALL is unknown in any case
  ])('no stored-function call: %s', (sql) => {
    expect(calls(sql)).toEqual([]);
  });

  it('survives the classifier cache', () => {
    const sql = 'SELECT cached_fw(1) /* calls survive */';
    expect(classify('mysql', sql).statements[0]!.calls).toEqual([{ schema: null, name: 'cached_fw', args: 1 }]);
    expect(classify('mysql', sql).statements[0]!.calls).toEqual([{ schema: null, name: 'cached_fw', args: 1 }]);
  });
});

// On the real server: a stored function named like a built-in, called every way, is listed whenever it runs.
describe('against MariaDB: a call that reaches a stored function is listed', () => {
  const DB = 'jit_my_calls_probe';
  const MUST_RUN = ['fw(1)', 'now (1)', '`count`(1)', `${DB}.md5(1)`];
  const NAMES = ['now', 'count', 'substring', 'concat', 'user', 'md5', 'left', 'sum', 'trim', 'fw', 'point', 'date'];
  beforeAll(async () => {
    await directMy(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}; CREATE TABLE ${DB}.log (v VARCHAR(40))`);
      for (const n of NAMES) {
        await c.query(`CREATE FUNCTION ${DB}.\`${n}\`(x INT) RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO ${DB}.log VALUES ('${n}'); RETURN 1; END`);
      }
    });
  });
  afterAll(async () => {
    await directMy((c) => c.query(`DROP DATABASE IF EXISTS ${DB}`));
  });

  it.each(NAMES.flatMap((n) => [`${n}(1)`, `${n} (1)`, `\`${n}\`(1)`, `${n}(1, 2)`, `${DB}.${n}(1)`]))('SELECT %s', async (expr) => {
    const ran = await directMy(async (c) => {
      // mysql2 asks for IGNORE_SPACE; a client through the broker gets the server's default, without it.
      await c.query(`USE ${DB}; SET SESSION sql_mode = 'STRICT_TRANS_TABLES'; DELETE FROM log`);
      try {
        await c.query(`SELECT ${expr}`);
      } catch (e) {
        if ((e as { errno?: number }).errno === 1318) return true; // the stored function's wrong number of arguments
      }
      return ((await c.query('SELECT COUNT(*) AS n FROM log'))[0] as { n: number }[])[0]!.n > 0;
    });
    if (MUST_RUN.includes(expr)) expect(ran).toBe(true); // the check itself sees a stored function run
    if (ran) expect(calls(`SELECT ${expr}`)).not.toEqual([]);
  });
});
