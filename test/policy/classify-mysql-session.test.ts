// The MySQL classifier in a session: versioned comments read as the session's server reads them, settings computed
// from what the session knows (and refused, saying why, when the result is a mode or character set the classifier
// does not follow), PREPARE/EXECUTE by name; a refusal of one of several statements says which.
import { describe, expect, it } from 'vitest';
import { classifyMysql, classifyMysqlSession } from '../../broker/policy/classify-mysql.js';
import { decide } from '../../broker/policy/index.js';
import { parseServerVersion, type MysqlServer } from '../../broker/policy/mysql-env.js';
import type { MysqlEnv } from '../../broker/policy/mysql-running.js';
import type { Identity } from '../../broker/types.js';

const MARIADB: MysqlServer = { family: 'mariadb', version: 101119 };
const env = (e: Partial<MysqlEnv> = {}): MysqlEnv => ({
  server: MARIADB,
  sqlMode: 'STRICT_TRANS_TABLES',
  charset: 'utf8mb4',
  vars: new Map(),
  prepared: new Map(),
  ...e,
});
const kinds = (sql: string, e: MysqlEnv = env()) => classifyMysqlSession(sql, e).classification.statements.map((s) => s.kinds);
const reasons = (sql: string, e: MysqlEnv = env()) => classifyMysqlSession(sql, e).classification.statements.map((s) => s.reason);

describe('the server a session reaches', () => {
  it.each([
    ['5.5.5-10.11.19-MariaDB-0+deb12u1', { family: 'mariadb', version: 101119 }],
    ['11.4.2-MariaDB-log', { family: 'mariadb', version: 110402 }],
    ['8.0.36', { family: 'mysql', version: 80036 }],
    ['8.4.0-commercial', { family: 'mysql', version: 80400 }],
    ['something else', null],
  ])('%s', (v, want) => expect(parseServerVersion(v)).toEqual(want));

  it("reads versioned comments as that server does: one above its version is a comment (mariadb-dump's sandbox line)", () => {
    const sandbox = '/*M!999999\\- enable the sandbox mode */ \nSELECT 1';
    expect(kinds(sandbox)).toEqual([['read']]);
    expect(classifyMysql(sandbox).statements.map((s) => s.kinds)).toContainEqual(['unknown']); // some server may run it
    expect(kinds('/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */')).toEqual([['read']]);
    expect(kinds('DELETE FROM t /*M!101200 WHERE id = 1 */')).toEqual([['destructive']]); // 10.12 and later only
    expect(kinds('DELETE FROM t /*M!101100 WHERE id = 1 */')).toEqual([['write']]);
    expect(kinds('DELETE FROM t /*!80100 WHERE id = 1 */', env({ server: { family: 'mysql', version: 80036 } }))).toEqual([['destructive']]);
    expect(kinds('DELETE FROM t /*!80000 WHERE id = 1 */', env({ server: { family: 'mysql', version: 80036 } }))).toEqual([['write']]);
  });
});

describe('settings computed from what the session knows', () => {
  it('MariaDB Connector/J and Rails: CONCAT / REPLACE of @@sql_mode and literals is known, and what it becomes is kept', () => {
    const cj = classifyMysqlSession("set autocommit=1, sql_mode = concat(@@sql_mode, ',STRICT_TRANS_TABLES')", env());
    expect(cj.classification.statements.map((s) => s.kinds)).toEqual([['read']]);
    expect(cj.changes?.sqlMode).toEqual({ to: 'STRICT_TRANS_TABLES,STRICT_TRANS_TABLES' });
    const rails =
      "SET NAMES utf8mb4,  @@SESSION.sql_mode = CONCAT(REPLACE(@@sql_mode, 'STRICT_TRANS_TABLES', ''), ',NO_AUTO_VALUE_ON_ZERO'),  @@SESSION.wait_timeout = 2147483";
    expect(classifyMysqlSession(rails, env()).changes).toMatchObject({ sqlMode: { to: ',NO_AUTO_VALUE_ON_ZERO' }, charset: { to: 'utf8mb4' } });
  });

  it("mariadb-dump's saved settings: values are taken before any is assigned, as the server does", () => {
    const r = classifyMysqlSession("SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO'; SET SQL_MODE=@OLD_SQL_MODE", env());
    expect(r.classification.statements.map((s) => s.kinds)).toEqual([['read'], ['read']]);
    expect(r.changes?.vars.get('old_sql_mode')).toBe('STRICT_TRANS_TABLES');
    expect(r.changes?.sqlMode).toEqual({ to: 'STRICT_TRANS_TABLES' });
    expect(kinds('SET sql_mode = IFNULL(@nothing, @@sql_mode)', env({ vars: new Map([['nothing', null]]) }))).toEqual([['read']]);
  });

  it('a mode or character set the classifier does not follow is unknown, and the reason names it', () => {
    expect(reasons("SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")[0]).toMatch(
      /sql_mode 'STRICT_TRANS_TABLES,ANSI_QUOTES' .*\(ANSI_QUOTES: "…" becomes a name, not a string\)/,
    );
    expect(reasons("SET sql_mode = 'ORACLE'")[0]).toMatch(/ORACLE: it switches the server to its Oracle grammar/);
    expect(reasons("SET sql_mode = 'NO_BACKSLASH_ESCAPES'")[0]).toMatch(/NO_BACKSLASH_ESCAPES: a backslash/);
    expect(reasons('SET sql_mode = 4')[0]).toMatch(/a number is a bit mask/);
    expect(reasons('SET NAMES sjis')[0]).toMatch(/client character set 'sjis'/);
    expect(reasons('SET character_set_client = @cs', env({ vars: new Map([['cs', 'gbk']]) }))[0]).toMatch(/'gbk'/);
    // Without a session, a value that is not a literal says so.
    expect(classifyMysql('SET sql_mode = @m').statements[0]).toMatchObject({
      kinds: ['unknown'],
      reason: expect.stringMatching(/not a literal or a value the broker knows \(@m holds a value the broker does not know/),
    });
    expect(classifyMysql("SET @m = 'ANSI'; SET sql_mode = @m").statements.map((s) => s.kinds)).toEqual([['read'], ['unknown']]);
  });

  it('a value it cannot compute runs (the server is asked afterwards), and nothing after it in the same text is read', () => {
    const r = classifyMysqlSession('SET sql_mode = @unknown; SELECT 1', env());
    expect(r.classification.statements.map((s) => s.kinds)).toEqual([['read'], ['unknown']]);
    expect(r.classification.statements[1]!.reason).toMatch(/comes after a SET of sql_mode in the same request.*send it on its own/);
    expect(r.changes?.sqlMode).toEqual({ to: undefined });
    expect(kinds("SET sql_mode = CONCAT(@@sql_mode, ',NO_ZERO_DATE')", env({ sqlMode: undefined }))).toEqual([['read']]);
  });

  it('a session whose mode the server reported as not followed reads nothing', () => {
    const st = classifyMysqlSession('SELECT 1', env({ unreadable: "the session's sql_mode 'ANSI_QUOTES' …" })).classification.statements;
    expect(st).toEqual([{ sql: 'SELECT 1', kinds: ['unknown'], tables: [], reason: "the session's sql_mode 'ANSI_QUOTES' …" }]);
  });
});

describe('PREPARE and EXECUTE by name', () => {
  it('EXECUTE takes the kinds, tables and calls of what was PREPAREd (in the same text, or earlier in the session)', () => {
    const r = classifyMysqlSession("PREPARE s FROM 'DELETE FROM t'; EXECUTE s", env());
    expect(r.classification.statements).toMatchObject([
      { kinds: ['destructive'], tables: ['t'] },
      { kinds: ['destructive'], tables: ['t'], reason: 'it runs prepared statement s: DELETE FROM t' },
    ]);
    const prepared = new Map([
      ['s', { sql: 'SELECT fw(x) FROM u', kinds: ['read' as const], tables: ['u'], calls: [{ schema: null, name: 'fw', args: 1 }], settings: false }],
    ]);
    expect(classifyMysqlSession('EXECUTE `S` USING @a', env({ prepared })).classification.statements).toMatchObject([
      { kinds: ['read'], tables: ['u'], calls: [{ name: 'fw' }] },
    ]);
  });

  it('PREPARE from a variable the session knows is read; one it does not know, or EXECUTE of a statement it never saw, is dynamic SQL', () => {
    expect(kinds("SET @q = 'SELECT * FROM t'; PREPARE s FROM @q; EXECUTE s")).toEqual([['read'], ['read'], ['read']]);
    expect(kinds("SET @q = CONCAT('DELETE FROM ', 't'); PREPARE s FROM @q")).toEqual([['read'], ['destructive']]);
    // A write may fire a trigger, and a stored function may run anything: either may set @q.
    expect(reasons("SET @q = 'SELECT 1'; INSERT INTO t VALUES (1); PREPARE s FROM @q")[2]).toMatch(
      /^dynamic SQL: its text is not a literal or a value the broker knows: @q holds/,
    );
    expect(kinds("SET @q = 'SELECT 1'; SELECT fw(); PREPARE s FROM @q")[2]).toEqual(['unknown']);
    expect(kinds("SET @q = 'SELECT 1'; SELECT 1 INTO @z; PREPARE s FROM @q")[2]).toEqual(['unknown']);
    expect(reasons("PREPARE s FROM 'SELECT 1'; DEALLOCATE PREPARE s; EXECUTE s")[2]).toMatch(
      /^dynamic SQL: EXECUTE of s, a statement this session has not PREPAREd/,
    );
    expect(kinds('EXECUTE nothing')).toEqual([['unknown']]);
  });

  it('a PREPAREd statement that sets sql_mode from a variable: its EXECUTE makes the setting one to ask the server for', () => {
    const r = classifyMysqlSession("SET @m = 'STRICT_ALL_TABLES'; PREPARE p FROM 'SET sql_mode = @m'; EXECUTE p; SELECT 1", env());
    expect(r.classification.statements.map((s) => s.kinds)).toEqual([['read'], ['read'], ['read'], ['unknown']]);
    expect(r.changes?.prepared.get('p')).toMatchObject({ settings: true });
  });
});

describe('a refusal of one of several statements', () => {
  it('says which statement it is about', () => {
    const id: Identity = { subject: 's', issuer: 'i', build: null, claims: {}, actors: [], tokenId: null, expiresAt: new Date(Date.now() + 60_000) };
    const d = decide(
      { rules: [{ id: 'reads', kinds: ['read'], action: 'allow' }], default: 'deny' },
      id,
      'app',
      classifyMysql('SELECT 1; EXECUTE s; SELECT 2'),
    );
    expect(d.message).toBe(
      'an unknown statement is denied by the default policy (no rule matched): dynamic SQL: EXECUTE of s, a statement this session has not PREPAREd through the broker from a text it could read — statement 2 of 3: EXECUTE s',
    );
  });
});

describe('bodies that run later', () => {
  it("a routine's, trigger's or event's body does not change the session's state now", () => {
    const prepared = new Map([['s', { sql: 'DELETE FROM t', kinds: ['destructive' as const], tables: ['t'], settings: false }]]);
    const r = classifyMysqlSession("CREATE PROCEDURE p() PREPARE s FROM 'SELECT 1'; EXECUTE s", env({ prepared }));
    expect(r.classification.statements.map((s) => s.kinds)).toEqual([['read', 'ddl'], ['destructive']]);
    expect(r.changes?.prepared.size ?? 0).toBe(0);
    expect(
      classifyMysqlSession("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET sql_mode = 'STRICT_ALL_TABLES'", env()).changes?.sqlMode,
    ).toBeUndefined();
  });
});
