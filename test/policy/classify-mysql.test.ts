// MySQL / MariaDB classification: kinds and tables statement by statement, versioned comments checked against
// the real MariaDB, and a property test that disguises never makes a dangerous statement look milder.
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyMysql } from '../../broker/policy/classify-mysql.js';
import { classify, mostSevere } from '../../broker/policy/index.js';
import { expand, type Reading } from '../../broker/policy/mysql-lexer.js';
import { KINDS, type Kind } from '../../broker/types.js';

/** [sql, kinds of each statement (one array for a single statement), tables of each statement (sorted)]. */
type Case = [sql: string, kinds: Kind[] | Kind[][], tables?: string[] | string[][]];

const nested = <T>(x: T[] | T[][]): T[][] => (x.length > 0 && Array.isArray(x[0]) ? (x as T[][]) : [x as T[]]);

function check([sql, kinds, tables]: Case): void {
  const c = classifyMysql(sql);
  expect(
    c.statements.map((s) => s.kinds),
    sql,
  ).toEqual(nested(kinds));
  if (tables)
    expect(
      c.statements.map((s) => [...s.tables].sort()),
      sql,
    ).toEqual(nested(tables));
}

const severity = (k: Kind): number => KINDS.indexOf(k);
const worst = (sql: string): Kind => mostSevere(classifyMysql(sql).statements.flatMap((s) => s.kinds));

describe('read', () => {
  it.each<Case>([
    ['SELECT 1', ['read'], []],
    ['SELECT * FROM drop_log', ['read'], ['drop_log']],
    ["SELECT 'DROP TABLE x'", ['read'], []],
    ['# DROP TABLE x\nSELECT 1', ['read'], []],
    ['-- DROP TABLE x\nSELECT 1', ['read'], []],
    ['/* DROP TABLE x */ SELECT 1', ['read'], []],
    ['SELECT a INTO @x FROM t', ['read'], ['t']],
    ['select * from Shop.Orders o join shop.items i on o.id = i.order_id', ['read'], ['shop.items', 'shop.orders']],
    ['WITH recent AS (SELECT * FROM orders) SELECT * FROM recent', ['read'], ['orders']],
    ['SELECT * FROM t WHERE a IN (SELECT b FROM db.u)', ['read'], ['db.u', 't']],
    ['SHOW TABLES', ['read'], []],
    ['SHOW FULL PROCESSLIST', ['read']],
    ['DESCRIBE users', ['read'], ['users']],
    ['DESC users', ['read'], ['users']],
    ['EXPLAIN SELECT * FROM users', ['read'], ['users']],
    ['EXPLAIN DELETE FROM users', ['read'], ['users']], // planned, not run
    ['BEGIN', ['read']],
    ['START TRANSACTION READ ONLY', ['read']],
    ['COMMIT', ['read']],
    ['ROLLBACK TO SAVEPOINT s1', ['read']],
    ['SAVEPOINT s1', ['read']],
    ['SET NAMES utf8mb4', ['read']],
    ["SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE'", ['read']],
    ['SET @x = 1, @y := 2', ['read']],
    ['SET autocommit = 0', ['read']],
    ['SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', ['read']],
    ['USE shop', ['read'], []],
    ['HANDLER users OPEN', ['read'], ['users']],
    ['HANDLER users READ FIRST', ['read'], ['users']],
    ['DO SLEEP(0)', ['read']],
    ['TABLE users', ['read'], ['users']],
    ['SELECT @@global.max_connections', ['read']],
    ['DEALLOCATE PREPARE s', ['read']],
    ['SELECT * FROM t FORCE INDEX (i) WHERE a = 1', ['read'], ['t']],
    ['SHOW CREATE TABLE secrets', ['read'], ['secrets']],
    ['SHOW FULL COLUMNS FROM secrets FROM db', ['read'], ['db.secrets']],
    ["/*!40101 SET NAMES utf8mb4 */; /*!40103 SET TIME_ZONE='+00:00' */", [['read'], ['read']]], // mysqldump
  ])('%s', (...c) => check(c));

  it('lists every table read, and a CTE name only where it is not one', () => {
    check(['SELECT * FROM t JOIN s6 USING (id) LEFT JOIN (s7 CROSS JOIN s8) ON 1', ['read'], ['s6', 's7', 's8', 't']]);
    check(['WITH secret AS (SELECT * FROM secret) SELECT * FROM secret', ['read'], ['secret']]);
    check(['SELECT * FROM secret WHERE a IN (WITH secret AS (SELECT 1) SELECT * FROM secret)', ['read'], ['secret']]);
    check(['SELECT (SELECT x FROM s1 LIMIT 1) FROM t ORDER BY (SELECT 1 FROM s2)', ['read'], ['s1', 's2', 't']]);
  });
});

describe('write', () => {
  it.each<Case>([
    ['INSERT INTO users (id) VALUES (1)', ['write'], ['users']],
    ['INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = a + 1', ['write'], ['t']],
    ['REPLACE INTO t VALUES (1)', ['write'], ['t']],
    ["INSERT INTO archive SELECT * FROM orders WHERE created < '2020-01-01'", ['write'], ['archive', 'orders']],
    ["UPDATE users SET name = 'x' WHERE id = 5", ['write'], ['users']],
    ['DELETE FROM users WHERE id = 5', ['write'], ['users']],
    ['DELETE LOW_PRIORITY QUICK FROM users WHERE id = 5', ['write'], ['users']],
    ['DELETE t FROM t JOIN u ON t.a = u.a WHERE u.b = 1', ['write'], ['t', 'u']],
    ['DELETE a FROM orders AS a JOIN users AS b ON a.uid = b.id WHERE b.banned = 1', ['write'], ['orders', 'users']],
    ['UPDATE t SET a = 1 WHERE id BETWEEN 1 AND 10', ['write'], ['t']],
    ['DELETE FROM orders o WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id)', ['write'], ['orders', 'users']],
    ['DELETE t FROM t JOIN u ON t.a = u.a WHERE t.id = u.id', ['write'], ['t', 'u']],
    ['LOCK TABLES t WRITE, u READ', ['write'], ['t', 'u']],
    ['SELECT * FROM t WHERE id = 1 FOR UPDATE', ['read', 'write'], ['t']],
    ['SELECT * FROM t LOCK IN SHARE MODE', ['read', 'write'], ['t']],
    // MariaDB sequences: advancing or setting one is a write, however the statement looks
    ['SELECT NEXTVAL(s), SETVAL(db.s2, 100)', ['read', 'write'], ['db.s2', 's']],
    ['DO NEXT VALUE FOR s', ['write', 'unknown'], ['s']], // the parser does not know NEXT VALUE FOR: unknown as well
    ['SELECT LASTVAL(s)', ['read'], ['s']],
    ['CREATE TABLE t2 SELECT * FROM t', ['write'], ['t', 't2']], // as CREATE TABLE AS for PostgreSQL
    ['CREATE OR REPLACE TABLE t2 AS SELECT * FROM t', ['write', 'destructive'], ['t', 't2']],
  ])('%s', (...c) => check(c));
});

describe('destructive', () => {
  it.each<Case>([
    ['DROP TABLE t', ['destructive'], ['t']],
    ['DROP TABLE IF EXISTS a, db.b', ['destructive'], ['a', 'db.b']],
    ['DROP DATABASE shop', ['destructive'], []],
    ['TRUNCATE TABLE t', ['destructive'], ['t']],
    ['DELETE FROM t', ['destructive'], ['t']],
    ['UPDATE t SET a = 1', ['destructive'], ['t']],
    ['DELETE FROM t LIMIT 10', ['destructive'], ['t']],
    ['DELETE FROM t WHERE 1=1', ['destructive']],
    ['DELETE FROM t WHERE true', ['destructive']],
    ['DELETE FROM t WHERE 1', ['destructive']],
    ["UPDATE t SET a = 1 WHERE 'a'='a'", ['destructive']],
    ['DELETE FROM t WHERE 2>1', ['destructive']],
    ['DELETE FROM t WHERE id = id', ['destructive']],
    ['DELETE FROM t WHERE id = 5 OR 1', ['destructive']],
    ['DELETE FROM t WHERE id = 5 || 1', ['destructive']], // node-sql-parser reads `id = (5 || 1)`
    ['DELETE FROM t WHERE 1 OR id = 2 AND id = 3', ['destructive']], // …and `(1 OR id = 2) AND id = 3`
    ["DELETE FROM t WHERE name LIKE '%'", ['destructive']],
    ['DELETE FROM t WHERE (id = 5) >= 0', ['destructive']],
    ['DELETE FROM t WHERE RAND() < 2', ['destructive']],
    ['DELETE FROM t WHERE id = 5 --1 OR 1=1', ['destructive']], // `--1` is minus minus one, not a comment
    ['DELETE FROM t WHERE t.id = id', ['destructive']],
    ['DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.x = 1)', ['destructive'], ['t', 'u']], // uncorrelated: constant
    ['DELETE t FROM t JOIN u ON t.a = u.a', ['destructive'], ['t', 'u']],
    ['ALTER TABLE t DROP COLUMN a', ['ddl', 'destructive'], ['t']],
    ['ALTER TABLE t ENGINE = BLACKHOLE', ['ddl', 'destructive'], ['t']],
    ['CREATE OR REPLACE TABLE t (id INT)', ['ddl', 'destructive'], ['t']],
    ["PREPARE s FROM 'DELETE FROM t'", ['destructive'], ['t']],
    ["PREPARE s FROM 'DELETE FROM ' 't'", ['destructive'], ['t']], // adjacent literals are concatenated
    ["EXECUTE IMMEDIATE 'DROP TABLE t'", ['destructive'], ['t']],
    ['ANALYZE DELETE FROM t', ['destructive'], ['t']], // MariaDB runs it to measure it
    ['CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW DELETE FROM audit', ['ddl', 'destructive'], ['audit', 't']],
    ['CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO TRUNCATE TABLE logs', ['ddl', 'destructive'], ['logs']],
  ])('%s', (...c) => check(c));

  it('a constant condition kept out by a comment does not count', () => {
    for (const sql of ['DELETE FROM t WHERE id = 5 -- OR 1=1', 'DELETE FROM t WHERE id = 5 # OR 1=1', 'DELETE FROM t WHERE id = 5 /* OR 1=1 */']) {
      check([sql, ['write'], ['t']]);
    }
  });
});

describe('ddl', () => {
  it.each<Case>([
    ['CREATE TABLE t (id INT PRIMARY KEY)', ['ddl'], ['t']],
    ['CREATE INDEX i ON t (a)', ['ddl'], ['t']],
    ['CREATE VIEW v AS SELECT * FROM t WITH CHECK OPTION', ['ddl'], ['t', 'v']],
    ['ALTER TABLE t ADD COLUMN b INT', ['ddl'], ['t']],
    ['ALTER TABLE t ALTER COLUMN b DROP DEFAULT', ['ddl'], ['t']],
    ['RENAME TABLE a TO b, c TO d', ['ddl'], ['a', 'b', 'c', 'd']],
    ['OPTIMIZE TABLE t', ['ddl'], ['t']],
    ['ANALYZE TABLE t', ['ddl'], ['t']],
    ['REPAIR TABLE t', ['ddl'], ['t']],
    ['CHECK TABLE t, u', ['ddl'], ['t', 'u']],
    ['CREATE DATABASE d', ['ddl'], []],
    ['CREATE PROCEDURE p() READS SQL DATA SELECT * FROM t', ['read', 'ddl'], ['t']],
    ['CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1', ['read', 'ddl']],
    // A compound body is split at its `;` like any text: its pieces are unknown, never milder.
    ['CREATE PROCEDURE p() BEGIN DELETE FROM t; END', [['ddl', 'unknown'], ['unknown']]],
  ])('%s', (...c) => check(c));
});

describe('privilege', () => {
  it.each<Case>([
    ["GRANT ALL ON *.* TO 'u'@'%'", ['privilege']],
    ['REVOKE SELECT ON db.t FROM u', ['privilege']],
    ["CREATE USER 'u'@'%' IDENTIFIED BY 'p'", ['privilege']],
    ["ALTER USER u IDENTIFIED BY 'x'", ['privilege']],
    ['DROP USER u', ['privilege']],
    ['RENAME USER a TO b', ['privilege']],
    ['CREATE ROLE r', ['privilege']],
    ['SET ROLE r', ['privilege']],
    ['SET DEFAULT ROLE r TO u', ['privilege']],
    ["SET PASSWORD FOR u = PASSWORD('x')", ['privilege']],
    ["CREATE DEFINER = 'root'@'%' VIEW v AS SELECT 1", ['ddl', 'privilege'], ['v']],
  ])('%s', (...c) => check(c));
});

describe('admin', () => {
  it.each<Case>([
    ["SELECT * FROM t INTO OUTFILE '/tmp/t.csv'", ['read', 'admin'], ['t']],
    ["SELECT * INTO DUMPFILE '/tmp/x' FROM t", ['read', 'admin'], ['t']],
    ["SELECT a FROM t UNION SELECT b FROM u INTO OUTFILE '/tmp/x'", ['read', 'admin'], ['t', 'u']],
    ["LOAD DATA INFILE '/etc/passwd' INTO TABLE t", ['admin'], ['t']],
    ["LOAD DATA LOCAL INFILE 'x.csv' REPLACE INTO TABLE db.t FIELDS TERMINATED BY ','", ['admin'], ['db.t']],
    ["LOAD XML INFILE 'x.xml' INTO TABLE t", ['admin'], ['t']],
    ['SET GLOBAL max_connections = 1', ['admin']],
    ['SET @@global.max_connections = 1', ['admin']],
    ['SET PERSIST max_connections = 1', ['admin']],
    ['SET @x = 1, GLOBAL general_log = 1', ['read', 'admin']],
    ['SET SESSION sql_log_bin = 0', ['admin']],
    ['KILL 42', ['admin']],
    ['KILL QUERY 42', ['admin']],
    ['SHUTDOWN', ['admin']],
    ["INSTALL PLUGIN x SONAME 'x.so'", ['admin']],
    ["INSTALL SONAME 'ha_connect'", ['admin']],
    ['FLUSH TABLES WITH READ LOCK', ['admin']],
    ['RESET MASTER', ['admin']],
    ["CHANGE MASTER TO MASTER_HOST = 'h'", ['admin']],
    ["PURGE BINARY LOGS TO 'mysql-bin.000010'", ['admin']],
    ["CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h')", ['admin']],
    ["SELECT LOAD_FILE('/etc/passwd')", ['read', 'admin']],
    ["CREATE FUNCTION sys_exec RETURNS INT SONAME 'lib_mysqludf_sys.so'", ['admin']],
    ["CREATE TABLE t (a INT) ENGINE=CONNECT TABLE_TYPE=CSV FILE_NAME='/etc/passwd'", ['ddl', 'admin'], ['t']],
  ])('%s', (...c) => check(c));
});

describe('unknown', () => {
  it.each<Case>([
    ['CALL p()', ['unknown']],
    ['EXECUTE s', ['unknown']],
    ['PREPARE s FROM @sql', ['unknown']],
    ["BINLOG 'AAAA'", ['unknown']],
    ['DELIMITER //', ['unknown']], // a mysql client command, never sent to a server
    ["SELECT sys_exec('id')", ['read', 'unknown']],
    ["SET sql_mode = 'NO_BACKSLASH_ESCAPES'", ['unknown']], // would change how every later string is read
    ["SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')", ['unknown']],
    ['/*!40101 SET SQL_MODE=@OLD_SQL_MODE */', ['unknown']], // whatever the variable holds
    ['SET NAMES gbk', ['unknown']], // 0xbf5c: a backslash hidden in a multi-byte character
    ['SET STATEMENT max_statement_time = 1 FOR DELETE FROM t', ['unknown']],
    ['BEGIN NOT ATOMIC DELETE FROM t; END', [['unknown'], ['unknown']]],
    ['IF 1 THEN DROP TABLE t; END IF', [['unknown'], ['unknown']]],
  ])('%s', (...c) => check(c));

  it('what does not parse is unknown, with the reason', () => {
    const c = classifyMysql('selec 1');
    expect(c.statements.map((s) => s.kinds)).toEqual([['unknown']]);
    expect(c.error).toBeDefined();
  });

  it('after a lexical error, the statements before it still count', () => {
    const c = classifyMysql("DROP TABLE t; SELECT 'unterminated");
    expect(c.statements.map((s) => s.kinds)).toEqual([['destructive'], ['unknown']]);
    expect(c.error).toMatch(/unterminated string/);
    expect(classifyMysql('SELECT 1 /* never closed').error).toMatch(/unterminated comment/);
    expect(classifyMysql('SELECT 1\0; DROP TABLE t').statements.flatMap((s) => s.kinds)).toEqual(['unknown']);
  });
});

describe('comments, quotes, case and statement boundaries', () => {
  it.each<Case>([
    ['/*!50000 DROP TABLE t */', ['destructive'], ['t']],
    ['SELECT 1 /*! ; DROP TABLE t */', [['read'], ['destructive']], [[], ['t']]],
    ['/*M!100100 DELETE FROM t */', ['destructive'], ['t']],
    ['/*!40101 SET NAMES utf8mb4 */', ['read']],
    // Every server reading counts: 99999 runs on no server yet, so the DELETE may well have no WHERE.
    ['DELETE FROM t /*!99999 WHERE id = 1 */', [['destructive'], ['write']]],
    ['DELETE FROM t WHERE id = 1 /*!50000 OR 1 */', [['destructive'], ['write']]],
    // MariaDB skips MySQL-5.7-only comments, MySQL 5.7+ runs them.
    ['/*!50700 DROP TABLE t */', ['destructive'], ['t']],
    // MariaDB runs /*M! … */, MySQL reads it as a comment.
    ['SELECT 1 /*M! ; DROP TABLE t */', [['read'], ['destructive']]],
    ['SELECT 1 -- ; DROP TABLE t', ['read']],
    ['SELECT 1 --\n; DROP TABLE t', [['read'], ['destructive']]],
    ['SELECT 1 --x\n; DROP TABLE t', [['read'], ['destructive']]],
    ['SELECT 1 # ; DROP TABLE t\n', ['read']],
    ['dRoP tAbLe T', ['destructive'], ['t']],
    ['Delete From `Users` Where 1', ['destructive'], ['users']],
    ["sElEcT * fRoM t iNtO oUtFiLe '/tmp/x'", ['read', 'admin'], ['t']],
    ['SELECT * FROM `drop`', ['read'], ['drop']],
    ['SELECT * FROM `a;b`', ['read'], ['a;b']],
    ['SELECT 1 AS `x``;DROP TABLE t`', ['read'], []],
    ['DROP TABLE `my db`.`My Table`', ['destructive'], ['my db.my table']],
    ["SELECT 'a\\'; DROP TABLE t; -- '", ['read']],
    ['SELECT "a"";DROP TABLE t"', ['read']],
    ["SELECT 'it''s; DROP TABLE t'", ['read']],
    ['SELECT 1; DROP TABLE t', [['read'], ['destructive']]],
    ['SELECT 1;;  ; SHOW TABLES;', [['read'], ['read']]],
    ['USE shop; DELETE FROM orders WHERE id = 3; COMMIT', [['read'], ['write'], ['read']], [[], ['orders'], []]],
  ])('%s', (...c) => check(c));

  it('keeps each statement’s own text, with executed versioned comments opened', () => {
    expect(classifyMysql('SELECT 1 /*! ; DROP TABLE t */').statements.map((s) => s.sql)).toEqual(['SELECT 1', 'DROP TABLE t']);
  });

  it('is what classify("mysql", …) answers, cached by text', () => {
    const c = classify('mysql', 'DROP TABLE audit_log');
    expect(c.statements[0]?.kinds).toEqual(['destructive']);
    expect(classify('mysql', 'DROP TABLE audit_log')).toBe(c);
  });
});

describe('versioned comments, against the real MariaDB', () => {
  const run = (sql: string): string => {
    try {
      return execFileSync('mariadb', ['--comments', '-h127.0.0.1', '-uroot', 'test', '-N', '-B', '-e', sql], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }).trim();
    } catch {
      return 'ERROR';
    }
  };
  const [major = 0, minor = 0, patch = 0] = (/^(\d+)\.(\d+)\.(\d+)/.exec(run('SELECT VERSION()')) ?? []).slice(1).map(Number);
  const server: Reading = { family: 'mariadb', version: major * 10000 + minor * 100 + patch };

  it('expands to the statement the server ran', () => {
    expect(server.version).toBeGreaterThan(100000);
    expect(expand('SELECT 1 /*!50000 + 1 */', server)).toBe('SELECT 1 + 1');
    expect(run('SELECT 1 /*!50000 + 1 */')).toBe(run('SELECT 1 + 1'));
    expect(run('SELECT 1 /*!50000 + 1 */')).toBe('2');
  });

  it.each([
    'SELECT 1 /*!50700 + 1 */', // MySQL 5.7+ only: skipped
    'SELECT 1 /*M!50700 + 1 */',
    `SELECT 1 /*!${server.version} + 1 */`,
    `SELECT 1 /*!${server.version + 1} + 1 */`,
    'SELECT 1 /*! + 1 */',
    'SELECT 1 + /*!1234*/', // not five digits: not a version, the digits are SQL
    'SELECT 1 /*!99999 /* inner */ + 1 */',
    "SELECT 1 /*!50000 + '*/' */",
    'SELECT 1 /*!50000 # */ + 1\n */',
    'SELECT 1 --1',
  ])('%s', (sql) => {
    const e = expand(sql, server);
    expect(e).not.toBeNull();
    expect(run(e!)).toBe(run(sql));
  });

  it('refuses to emulate a versioned comment inside another: unknown', () => {
    expect(expand('SELECT 1 /*!50000 + 1 /*!50000 + 1 */', server)).toBeNull();
    expect(worst('SELECT 1 /*!50000 + 1 /*!50000 + 1 */')).toBe('unknown');
  });
});

describe('disguises never make a dangerous statement milder', () => {
  // Each statement as words: separators go between them.
  const dangerous: [string[], Kind][] = [
    [['DROP', 'TABLE', 't'], 'destructive'],
    [['DELETE', 'FROM', 't'], 'destructive'],
    [['DELETE', 'FROM', 't', 'WHERE', '1', '=', '1'], 'destructive'],
    [['UPDATE', 't', 'SET', 'a', '=', '1'], 'destructive'],
    [['TRUNCATE', 'TABLE', 't'], 'destructive'],
    [['DELETE', 't', 'FROM', 't', 'JOIN', 'u', 'ON', 't.a', '=', 'u.a'], 'destructive'],
    [['ALTER', 'TABLE', 't', 'DROP', 'COLUMN', 'a'], 'destructive'],
    [['PREPARE', 's', 'FROM', "'DROP TABLE t'"], 'destructive'],
    [['GRANT', 'ALL', 'ON', '*.*', 'TO', "'u'@'%'"], 'privilege'],
    [['CREATE', 'USER', 'u'], 'privilege'],
    [['DROP', 'USER', 'u'], 'privilege'],
    [['SET', 'PASSWORD', '=', "'x'"], 'privilege'],
    [['SELECT', '*', 'FROM', 't', 'INTO', 'OUTFILE', "'/tmp/x'"], 'admin'],
    [['LOAD', 'DATA', 'INFILE', "'/etc/passwd'", 'INTO', 'TABLE', 't'], 'admin'],
    [['SET', 'GLOBAL', 'max_connections', '=', '1'], 'admin'],
    [['KILL', '1'], 'admin'],
    [['SHUTDOWN'], 'admin'],
    [['INSTALL', 'PLUGIN', 'x', 'SONAME', "'x.so'"], 'admin'],
    [['SELECT', "LOAD_FILE('/etc/passwd')"], 'admin'],
  ];
  const text = (alphabet: string): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 12 });
  const safe = 'abc ;\'"`#-*!/0123456789';
  const separator = fc.oneof(
    fc.constantFrom(' ', '\n', '\t', '  \r\n ', '/**/', '--\n', '/*!50000 */', '/*! */'),
    text(safe)
      .filter((s) => !s.includes('*/') && !s.endsWith('*'))
      .map((s) => ` /* ${s} */ `),
    text(safe).map((s) => ` # ${s}\n`),
    text(safe).map((s) => ` -- ${s}\n`),
  );
  const harmless = fc.constantFrom('SELECT 1', 'SHOW TABLES', "SELECT 'DROP TABLE t'", 'SET @x = 1', 'BEGIN', '/* ; */ SELECT 2');
  const wrap = fc.constantFrom('%', '/*!50000 % */', '/*M!100100 % */', '/*! % */', '/*!50000%*/');

  it('comments, whitespace, case, versioned comments and harmless neighbours', () => {
    for (const [words, kind] of dangerous) expect(worst(words.join(' ')), words.join(' ')).toBe(kind);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: dangerous.length - 1 }),
        fc.array(separator, { minLength: 20, maxLength: 20 }),
        fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
        wrap,
        fc.array(harmless, { maxLength: 2 }),
        fc.array(harmless, { maxLength: 2 }),
        (which, seps, upper, wrapper, before, after) => {
          const [words, kind] = dangerous[which]!;
          const cased = words.map((w) => [...w].map((ch, k) => (upper[k % 64] ? ch.toUpperCase() : ch.toLowerCase())).join(''));
          const body = cased.map((w, k) => (k === 0 ? '' : seps[k]!) + w).join('');
          const sql = [...before, wrapper.replace('%', () => body), ...after].join(`;${seps[0] ?? ' '}`);
          const got = worst(sql);
          expect(severity(got), `${sql} → ${got}`).toBeGreaterThanOrEqual(severity(kind));
        },
      ),
      { numRuns: 400 },
    );
  });
});
