// A PostgreSQL session's prepared statements (broker/session-postgres.ts, policy/pg-prepared.ts): EXECUTE is judged by
// what was prepared under its name, in this session; what the session holds may be more than the server does,
// never less (a DEALLOCATE counts once it ran without error; a name prepared again holds either statement till then).
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPostgresParser } from '../../../broker/policy/index.js';
import { classifyPostgres } from '../../../broker/policy/classify-postgres.js';
import { PostgresSessionState } from '../../../broker/session-postgres.js';
import type { ClassifiedStatement, Decision, StatementRequest } from '../../../broker/types.js';

beforeAll(async () => {
  await loadPostgresParser();
});

/** A session that runs what it is given, as the broker's session core drives it. */
class Session {
  readonly state = new PostgresSessionState();
  private id = 0;

  /** Classify and substitute `sql` (nothing runs). */
  judge(sql: string): ClassifiedStatement[] {
    return this.state.substitute(classifyPostgres(sql)).classification.statements;
  }

  /** Admit `sql` to run (protocol `simple`, or a named Parse); returns its record id, for done(). */
  run(sql: string, req: Partial<StatementRequest> = {}): number {
    const s = this.state.substitute(classifyPostgres(sql));
    const d: Decision = { action: 'allow', ruleId: null, message: '', kinds: [] };
    this.state.decided(d, s);
    const id = ++this.id;
    this.state.admitted(d, { sql, protocol: 'simple', ...req }, id);
    return id;
  }

  done(id: number, ok = true): void {
    this.state.completed(id, ok);
  }

  /** The kinds of `EXECUTE name`. */
  kinds(name: string): string[] {
    return this.judge(`EXECUTE ${name}`)[0]!.kinds;
  }
}

describe('EXECUTE is what the session prepared under its name', () => {
  it('takes the kinds, tables and calls of what it runs, and says so', () => {
    const s = new Session();
    s.done(s.run('PREPARE q(int) AS SELECT $1'));
    s.done(s.run('PREPARE d AS DELETE FROM app.t WHERE f(id)'));
    expect(s.judge('EXECUTE q(2)')[0]).toMatchObject({ sql: 'EXECUTE q(2)', kinds: ['read'], tables: [] });
    const [d] = s.judge('EXECUTE d');
    expect(d).toMatchObject({ kinds: ['write'], tables: ['app.t'], calls: [{ schema: null, name: 'f', args: 1 }] });
    expect(d!.reason).toBe('EXECUTE d runs what this session prepared as d (PREPARE d AS DELETE FROM app.t WHERE f(id))');
  });

  it('adds what its parameter expressions do', () => {
    const s = new Session();
    s.done(s.run('PREPARE q(bigint) AS SELECT $1'));
    expect(s.judge("EXECUTE q(nextval('s'))")[0]).toMatchObject({ kinds: ['read', 'write'], calls: [{ name: 'nextval' }] });
  });

  it('a name never prepared here stays unknown, saying so', () => {
    const s = new Session();
    const [st] = s.judge('EXECUTE q(1)');
    expect(st!.kinds).toEqual(['unknown']);
    expect(st!.reason).toBe('EXECUTE q: no statement q was prepared in this session through the broker');
  });

  it('within one string, what a statement prepares or deallocates holds for the statements after it', () => {
    const s = new Session();
    expect(s.judge('PREPARE d AS DELETE FROM t; EXECUTE d').map((st) => st.kinds)).toEqual([['destructive'], ['destructive']]);
    s.done(s.run('PREPARE q AS SELECT 1'));
    expect(s.judge('DEALLOCATE q; EXECUTE q')[1]!.kinds).toEqual(['unknown']);
    expect(s.judge('DISCARD ALL; EXECUTE q')[1]!.kinds).toEqual(['unknown']);
    expect(s.judge('DEALLOCATE q; PREPARE q AS DELETE FROM t; EXECUTE q')[2]!.kinds).toEqual(['destructive']);
    expect(s.kinds('q')).toEqual(['read']); // judging runs nothing
  });

  it('a DEALLOCATE counts once it ran without error; until then, a name prepared again may be either statement', () => {
    const s = new Session();
    s.done(s.run('PREPARE q AS DELETE FROM t'));
    const dealloc = s.run('DEALLOCATE q');
    expect(s.kinds('q')).toEqual(['destructive']);
    s.done(s.run('PREPARE q AS SELECT 1')); // fails upstream if q is still there
    expect(s.kinds('q')).toEqual(['read', 'destructive']);
    s.done(dealloc);
    expect(s.kinds('q')).toEqual(['read']);
  });

  it('a DEALLOCATE or DISCARD ALL that failed forgets nothing', () => {
    const s = new Session();
    s.done(s.run('PREPARE q AS DELETE FROM t'));
    s.done(s.run('BEGIN; SELECT 1/0; DEALLOCATE q'), false);
    s.done(s.run('DISCARD ALL'), false);
    s.done(s.run('PREPARE q AS SELECT 1'));
    expect(s.kinds('q')).toEqual(['read', 'destructive']);
    s.done(s.run('DISCARD ALL'));
    expect(s.kinds('q')).toEqual(['unknown']);
  });

  it('a named protocol-level Parse prepares under the same names', () => {
    const s = new Session();
    s.run('DELETE FROM t', { protocol: 'parse', name: 'S_1' });
    s.run('SELECT 1', { protocol: 'parse', name: '' });
    expect(s.kinds('S_1')).toEqual(['unknown']); // `EXECUTE S_1` means s_1
    expect(s.kinds('"S_1"')).toEqual(['destructive']);
    expect(s.kinds('""')).toEqual(['unknown']);
  });

  it('a Parse of PREPARE prepares at its Execute, not at the Parse', () => {
    const s = new Session();
    const d: Decision = { action: 'allow', ruleId: null, message: '', kinds: [] };
    const sql = 'PREPARE q AS DELETE FROM t';
    s.state.decided(d, s.state.substitute(classifyPostgres(sql)));
    s.state.admitted(d, { sql, protocol: 'parse', name: '' }, null);
    expect(s.kinds('q')).toEqual(['unknown']);
    s.state.admitted(d, { sql, protocol: 'execute' }, 7);
    expect(s.kinds('q')).toEqual(['destructive']);
  });

  it('a decision that judged an EXECUTE is taken again at each execution; others are not', () => {
    const s = new Session();
    const judged = (sql: string) => {
      const d: Decision = { action: 'allow', ruleId: null, message: '', kinds: [] };
      s.state.decided(d, s.state.substitute(classifyPostgres(sql)));
      return s.state.stale(d);
    };
    expect(judged('EXECUTE q')).toBe(true);
    expect(judged('SELECT 1')).toBe(false);
    expect(judged('PREPARE q AS SELECT 1')).toBe(false);
  });
});
