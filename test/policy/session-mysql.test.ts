// The state a MySQL session keeps for its classifier (broker/session-mysql.ts): what a statement sets is known once
// it has run without error, and only then; what may set variables out of sight makes them unknown; a setting the
// broker cannot compute is asked of the server, and a mode it does not follow stops the session's statements.
import { describe, expect, it } from 'vitest';
import { MysqlSessionState } from '../../broker/session-mysql.js';
import type { Decision, StatementRequest } from '../../broker/types.js';

describe('the state a session keeps (MysqlSessionState)', () => {
  const simple: StatementRequest = { sql: '', protocol: 'simple' };
  /** Decide (allow) and admit `sql` as statement `id`. */
  function run(s: MysqlSessionState, sql: string, id: number, protocol: StatementRequest['protocol'] = 'simple'): Decision {
    const r = s.classify(sql);
    const d: Decision = { action: 'allow', ruleId: null, message: '', kinds: [] };
    s.decided(d, r.changes, false);
    s.admitted(d, { ...simple, sql, protocol }, id);
    return d;
  }
  const known = (s: MysqlSessionState, v: string) => s.classify(`PREPARE x FROM @${v}`).classification.statements[0]!.kinds;
  const ready = () => {
    const s = new MysqlSessionState();
    s.serverVersion('5.5.5-10.11.19-MariaDB');
    s.asking();
    s.settings({ sqlMode: 'STRICT_TRANS_TABLES', charset: 'utf8mb4' });
    return s;
  };

  it('what a statement sets is known once it has run without error; not before, not after an error', () => {
    const s = ready();
    run(s, "SET @a = 'SELECT 1', @b = 'SELECT 2'", 1);
    expect(known(s, 'a')).toEqual(['unknown']); // still running
    s.completed(1, true);
    expect(known(s, 'a')).toEqual(['read']);
    run(s, "SET @a = 'DELETE FROM t'", 2);
    s.completed(2, false); // failed: @a may be either
    expect(known(s, 'a')).toEqual(['unknown']);
    expect(known(s, 'b')).toEqual(['read']);
    run(s, 'INSERT INTO t VALUES (1)', 3); // a trigger may set any variable
    expect(known(s, 'b')).toEqual(['unknown']);
  });

  it('with another state-changing statement still running, what one sets stays unknown', () => {
    const s = ready();
    run(s, "SET @a = 'SELECT 1'", 1);
    run(s, "SET @c = 'SELECT 3'", 2);
    s.completed(1, true);
    expect(known(s, 'a')).toEqual(['unknown']);
    s.completed(2, true);
    expect(known(s, 'c')).toEqual(['read']);
  });

  it('a prepared statement (COM_STMT_PREPARE) changes things at each execution, to values its parameters decide', () => {
    const s = ready();
    run(s, "SET @a = 'SELECT 1'", 1);
    s.completed(1, true);
    const d = run(s, 'SET @a = ?', 0, 'parse');
    expect(known(s, 'a')).toEqual(['read']);
    s.admitted(d, { sql: 'SET @a = ?', protocol: 'execute' }, 2);
    s.completed(2, true);
    expect(known(s, 'a')).toEqual(['unknown']);
  });

  it('settings: a known value is kept; one not computed or a failed SET is asked of the server, and commands wait for it', async () => {
    const s = ready();
    run(s, "SET sql_mode = CONCAT(@@sql_mode, ',NO_ZERO_DATE')", 1);
    expect(s.settling).not.toBeNull();
    s.completed(1, true);
    expect(s.settling).toBeNull();
    expect(s.wantsSettings).toBe(false);
    expect(s.classify('SET @m = @@sql_mode').changes?.vars.get('m')).toBe('STRICT_TRANS_TABLES,NO_ZERO_DATE');

    run(s, 'SET sql_mode = @whatever', 2);
    const settling = s.settling!;
    s.completed(2, true);
    expect(s.wantsSettings).toBe(true);
    s.asking();
    s.settings({ sqlMode: 'REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI', charset: 'utf8mb4' });
    await settling;
    expect(s.classify('SELECT 1').classification.statements[0]).toMatchObject({
      kinds: ['unknown'],
      reason: expect.stringMatching(/^the session's sql_mode .*ANSI_QUOTES: "…" becomes a name.*reconnect/),
    });
  });

  it('COM_RESET_CONNECTION: variables and prepared statements are gone', () => {
    const s = ready();
    run(s, "SET @a = 'SELECT 1'; PREPARE p FROM 'SELECT 2'", 1);
    s.completed(1, true);
    expect(known(s, 'a')).toEqual(['read']);
    expect(s.classify('EXECUTE p').classification.statements[0]!.kinds).toEqual(['read']);
    s.reset();
    expect(known(s, 'a')).toEqual(['unknown']);
    expect(s.classify('EXECUTE p').classification.statements[0]!.kinds).toEqual(['unknown']);
  });
});
