// Policy: classify() gives each statement its kinds and tables; decide() matches rules in order.
// Both are pure, so everything here runs without a database.
import { describe, expect, it } from 'vitest';
import { classify, decide, decideStatement, loadPostgresParser, mostSevere, type PolicyConfig, type Rule } from '../../broker/policy/index.js';
import type { Classification, ClassifiedStatement, Identity, Kind } from '../../broker/types.js';

// Before the describe blocks are collected, not in beforeAll: some classify SQL while they are. The parser is
// loaded only on request now (the broker asks for it when it has PostgreSQL targets), no longer by the import.
await loadPostgresParser();

const pg = (sql: string): Classification => classify('postgres', sql);

function identity(over: Partial<Identity> = {}): Identity {
  return {
    subject: 'repo:acme/app:ref:refs/heads/main',
    issuer: 'https://token.actions.githubusercontent.com',
    build: 'acme/app/4242/1',
    claims: { repository: 'acme/app', repository_owner: 'acme', run_attempt: 1, groups: ['dev', 'ops'], nested: { a: 'b' } },
    actors: [],
    tokenId: 'jti-1',
    expiresAt: new Date('2030-01-01T00:00:00Z'),
    ...over,
  };
}

const st = (kinds: Kind[], tables: string[] = [], sql = 'x'): ClassifiedStatement => ({ sql, kinds, tables });
const one = (kinds: Kind[], tables: string[] = []): Classification => ({ statements: [st(kinds, tables)] });
const policy = (rules: Rule[], dflt: PolicyConfig['default'] = 'deny'): PolicyConfig => ({ rules, default: dflt });

/** The id of the rule that decides `c` under `rules` (null: the default). */
function winner(rules: Rule[], c: Classification, who: Identity = identity(), target = 'app'): string | null {
  return decide(policy(rules), who, target, c).ruleId;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

describe('classify (postgres)', () => {
  // [sql, kinds of each statement (sorted), tables of each statement (sorted)]
  const rows: [string, Kind[][], string[][]][] = [
    // read
    ['SELECT 1', [['read']], [[]]],
    ['select * from users', [['read']], [['users']]],
    ['SELECT * FROM Public.Users u JOIN orders o ON o.uid = u.id', [['read']], [['orders', 'public.users']]],
    ["SELECT 'DROP TABLE x'", [['read']], [[]]],
    ['select * from drop_log', [['read']], [['drop_log']]],
    ['SELECT 1 -- ; DROP TABLE t', [['read']], [[]]],
    ['SELECT $$;DROP TABLE t$$', [['read']], [[]]],
    ['SELECT 1 /* ; DELETE FROM t */', [['read']], [[]]],
    ['EXPLAIN DELETE FROM t', [['read']], [['t']]],
    ['EXPLAIN SELECT * FROM secrets', [['read']], [['secrets']]],
    ['COPY t TO STDOUT', [['read']], [['t']]],
    ['SHOW search_path', [['read']], [[]]],
    ['SET search_path = app', [['read']], [[]]],
    ['BEGIN', [['read']], [[]]],
    // write
    ['INSERT INTO t VALUES (1)', [['read', 'write']], [['t']]],
    ['UPDATE t SET a = 1 WHERE id = 2', [['write']], [['t']]],
    ['DELETE FROM t WHERE id = 1', [['write']], [['t']]],
    ['DELETE FROM t WHERE id = 1 AND 1 = 1', [['write']], [['t']]],
    ['COPY t FROM STDIN', [['write']], [['t']]],
    ['SELECT * INTO t2 FROM t', [['write']], [['t', 't2']]],
    ['SELECT * FROM t FOR UPDATE', [['write']], [['t']]],
    ['LOCK TABLE t', [['write']], [['t']]],
    // A CTE name is not a table (issue 3): d is left out.
    ['WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d', [['read', 'write']], [['t']]],
    // destructive
    ['/* x */ DROP TABLE t', [['destructive']], [['t']]],
    ['DROP TABLE s.t, u', [['destructive']], [['s.t', 'u']]],
    ['TRUNCATE t', [['destructive']], [['t']]],
    ['DELETE FROM t', [['destructive']], [['t']]],
    ['DELETE FROM t WHERE 1=1', [['destructive']], [['t']]],
    ["DELETE FROM t WHERE 'a' = 'a'", [['destructive']], [['t']]],
    ['DELETE FROM t WHERE id = 1 OR true', [['destructive']], [['t']]],
    ['UPDATE t SET a=1', [['destructive']], [['t']]],
    ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', [['destructive', 'read']], [['t']]],
    ['EXPLAIN ANALYZE DELETE FROM t', [['destructive']], [['t']]],
    ['ALTER TABLE t DROP COLUMN a', [['destructive']], [['t']]],
    ['SELECT 1; DROP TABLE t', [['read'], ['destructive']], [[], ['t']]],
    // ddl
    ['CREATE TABLE t (a int)', [['ddl']], [['t']]],
    ['ALTER TABLE t ADD COLUMN a int', [['ddl']], [['t']]],
    ['CREATE INDEX i ON t (a)', [['ddl']], [['t']]],
    // privilege
    ['GRANT SELECT ON t TO bob', [['privilege']], [['t']]],
    ['REVOKE ALL ON t FROM bob', [['privilege']], [['t']]],
    ['CREATE ROLE eve SUPERUSER', [['privilege']], [[]]],
    ['SET ROLE postgres', [['privilege']], [[]]],
    ['SET SESSION AUTHORIZATION postgres', [['privilege']], [[]]],
    ['ALTER TABLE t OWNER TO bob', [['ddl', 'privilege']], [['t']]],
    // admin
    // Every kind that applies: a server-file COPY also reads (or writes) its table.
    ["COPY t TO '/tmp/x'", [['admin', 'read']], [['t']]],
    ["COPY t FROM PROGRAM 'curl evil'", [['admin', 'write']], [['t']]],
    ["select pg_read_file('x')", [['admin', 'read']], [[]]],
    ["SELECT pg_catalog.pg_read_file('/etc/passwd')", [['admin', 'read']], [[]]],
    ['ALTER SYSTEM SET work_mem = 1', [['admin']], [[]]],
    ['CREATE EXTENSION dblink', [['admin']], [[]]],
    // unknown
    ['DO $$ BEGIN END $$', [['read']], [[]]], // the body is analysed: it runs nothing
    ["DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'x' || now(); END $$", [['read', 'unknown']], [[]]],
    ['CALL p()', [['unknown']], [[]]],
    ['EXECUTE p', [['unknown']], [[]]],
    ['selec 1', [['unknown']], [[]]],
  ];

  it.each(rows)('%s', (sql, kinds, tables) => {
    const c = pg(sql);
    expect(c.statements.map((s) => [...s.kinds].sort())).toEqual(kinds);
    expect(c.statements.map((s) => [...s.tables].sort())).toEqual(tables);
  });

  it('the most severe kind of each row is what rules see', () => {
    expect(mostSevere(pg('WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d').statements[0]!.kinds)).toBe('destructive');
    expect(mostSevere(pg("select pg_read_file('x')").statements[0]!.kinds)).toBe('admin');
    expect(mostSevere(pg('INSERT INTO t VALUES (1)').statements[0]!.kinds)).toBe('write');
  });

  it('splits a string into its statements, each with its own text', () => {
    const c = pg('SELECT 1;  DROP TABLE t ;');
    expect(c.error).toBeUndefined();
    expect(c.statements.map((s) => s.sql)).toEqual(['SELECT 1', 'DROP TABLE t']);
  });

  it('an unparseable string is one unknown statement carrying the parser error', () => {
    const c = pg('selec 1');
    expect(c.statements).toEqual([{ sql: 'selec 1', kinds: ['unknown'], tables: [] }]);
    expect(c.error).toMatch(/syntax error at or near "selec"/);
    // One bad statement makes the whole string unparseable, including the good one before it.
    const mixed = pg('SELECT 1; selec 2');
    expect(mixed.error).toBeDefined();
    expect(mixed.statements.flatMap((s) => s.kinds)).toEqual(['unknown']);
  });

  it('is cached by text', () => {
    expect(pg('SELECT 42')).toBe(pg('SELECT 42'));
  });

  it('MySQL goes to the MySQL classifier (test/policy/classify-mysql.test.ts)', () => {
    const c = classify('mysql', 'SELECT 1 /*!50000 ; DROP TABLE t */');
    expect(c.statements.map((s) => s.kinds)).toEqual([['read'], ['destructive']]);
    expect(c.error).toBeUndefined();
  });
});

describe('mostSevere', () => {
  it('orders read < write < ddl < destructive < privilege < admin < unknown', () => {
    expect(mostSevere(['read'])).toBe('read');
    expect(mostSevere(['read', 'write'])).toBe('write');
    expect(mostSevere(['destructive', 'ddl'])).toBe('destructive');
    expect(mostSevere(['read', 'privilege', 'destructive'])).toBe('privilege');
    expect(mostSevere(['admin', 'privilege'])).toBe('admin');
    expect(mostSevere(['read', 'unknown', 'admin'])).toBe('unknown');
  });
  it('no kinds is unknown', () => {
    expect(mostSevere([])).toBe('unknown');
  });
});

describe('decide', () => {
  it('is pure: same answer every time, inputs untouched', () => {
    const p = deepFreeze(policy([{ id: 'reads', kinds: ['read'], action: 'allow' }]));
    const who = deepFreeze(identity());
    const c = deepFreeze(pg('SELECT 1; DELETE FROM t'));
    const first = decide(p, who, 'app', c);
    expect(decide(p, who, 'app', c)).toEqual(first);
    expect(first).toMatchObject({ action: 'deny', ruleId: null });
  });

  it('the first matching rule wins, in order', () => {
    const rules: Rule[] = [
      { id: 'no-writes', kinds: ['write'], action: 'deny' },
      { id: 'reads', kinds: ['read'], action: 'allow' },
      { id: 'everything', action: 'allow' },
      { id: 'reads-again', kinds: ['read'], action: 'deny' },
    ];
    expect(winner(rules, one(['read']))).toBe('reads');
    expect(winner(rules, one(['write']))).toBe('no-writes');
    expect(winner(rules, one(['ddl']))).toBe('everything');
    const reversed = [rules[2]!, rules[0]!, rules[1]!];
    expect(winner(reversed, one(['write']))).toBe('everything');
  });

  it('no matching rule: default deny, with a message that says so', () => {
    const d = decide(policy([{ id: 'reads', kinds: ['read'], action: 'allow' }]), identity(), 'app', pg('DROP TABLE t'));
    expect(d).toEqual({
      action: 'deny',
      ruleId: null,
      message: 'a destructive statement is denied by the default policy (no rule matched)',
      kinds: ['destructive'],
    });
  });

  it('`default: allow` and `default: review` are honoured', () => {
    expect(decide(policy([], 'allow'), identity(), 'app', pg('DROP TABLE t'))).toMatchObject({ action: 'allow', ruleId: null });
    const r = decide(policy([], 'review'), identity(), 'app', pg('DROP TABLE t'));
    expect(r).toMatchObject({ action: 'review', ruleId: null });
    expect(r.message).toBe('a destructive statement needs approval under the default policy (no rule matched)');
  });

  it('the decision carries the rule id, and a generated message naming it', () => {
    const allow = decide(policy([{ id: 'reads', kinds: ['read'], action: 'allow' }]), identity(), 'app', pg('SELECT 1'));
    expect(allow).toEqual({ action: 'allow', ruleId: 'reads', message: "allowed by rule 'reads'", kinds: ['read'] });
    const deny = decide(policy([{ id: 'no-ddl', kinds: ['ddl'], action: 'deny' }]), identity(), 'app', pg('CREATE TABLE t (a int)'));
    expect(deny).toMatchObject({ action: 'deny', ruleId: 'no-ddl', message: "a ddl statement is denied by rule 'no-ddl'" });
    const review = decide(policy([{ id: 'writes', kinds: ['write'], action: 'review' }]), identity(), 'app', pg('UPDATE t SET a = 1 WHERE id = 1'));
    expect(review).toMatchObject({ action: 'review', ruleId: 'writes', message: "a write statement needs approval under rule 'writes'" });
  });

  it('exemptMasking: set only when every statement of a text that parsed is decided by an exempt_masking rule', () => {
    const rules: Rule[] = [
      { id: 'break-glass', subjects: ['oncall:*'], kinds: ['read'], action: 'allow', exempt_masking: true },
      { id: 'held', subjects: ['oncall:*'], kinds: ['write'], action: 'review', exempt_masking: true },
      { id: 'day-to-day', kinds: ['read', 'write'], action: 'allow' },
    ];
    const oncall = identity({ subject: 'oncall:dana' });
    const d = (sql: string, who = oncall) => decide(policy(rules), who, 'app', pg(sql));
    expect(d('SELECT 1; SELECT 2')).toMatchObject({ action: 'allow', ruleId: 'break-glass', exemptMasking: true });
    expect(d('UPDATE t SET a = 1 WHERE id = 1')).toMatchObject({ action: 'review', ruleId: 'held', exemptMasking: true });
    expect(d('SELECT 1', identity())).not.toHaveProperty('exemptMasking');
    // One statement decided by another rule (or refused): the whole text is masked.
    expect(d('SELECT 1; DELETE FROM t')).toMatchObject({ action: 'deny' });
    expect(d('SELECT 1; DELETE FROM t')).not.toHaveProperty('exemptMasking');
    expect(decide(policy([rules[0]!, { id: 'w', kinds: ['write'], action: 'allow' }]), oncall, 'app', pg('SELECT 1; UPDATE t SET a = 1'))).not.toHaveProperty(
      'exemptMasking',
    );
    // Text that does not parse, and no statement at all.
    expect(decide(policy(rules), oncall, 'app', { statements: [st(['read'])], error: 'syntax error' })).not.toHaveProperty('exemptMasking');
    expect(decide(policy(rules), oncall, 'app', { statements: [] })).not.toHaveProperty('exemptMasking');
  });

  it('returns a rule’s custom message', () => {
    const msg = 'card data stays in the billing service; ask #payments';
    const d = decide(policy([{ id: 'pci', tables: ['*.card*'], action: 'deny', message: msg }]), identity(), 'app', pg('SELECT * FROM billing.cards'));
    expect(d).toMatchObject({ action: 'deny', ruleId: 'pci', message: msg });
    const a = decide(policy([{ id: 'ok', action: 'allow', message: 'fine' }]), identity(), 'app', pg('SELECT 1'));
    expect(a.message).toBe('fine');
  });

  describe('targets', () => {
    const rules: Rule[] = [
      { id: 'prod', targets: ['prod-*'], action: 'deny' },
      { id: 'one-char', targets: ['db?'], action: 'review' },
      { id: 'app', targets: ['app', 'staging'], action: 'allow' },
    ];
    it.each([
      ['prod-eu', 'prod'],
      ['prod-', 'prod'],
      ['db1', 'one-char'],
      ['db12', null],
      ['app', 'app'],
      ['staging', 'app'],
      ['apps', null],
      ['production', null],
    ] as [string, string | null][])('%s → %s', (target, id) => {
      expect(winner(rules, one(['read'], ['t']), identity(), target)).toBe(id);
    });
  });

  describe('kinds: by the most severe kind of the statement', () => {
    const rules: Rule[] = [
      { id: 'reads', kinds: ['read'], action: 'allow' },
      { id: 'writes', kinds: ['write', 'ddl'], action: 'review' },
    ];
    it('a writing CTE with an unrestricted DELETE is not a read', () => {
      const c = pg('WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d');
      expect([...c.statements[0]!.kinds].sort()).toEqual(['destructive', 'read']);
      const d = decide(policy(rules), identity(), 'app', c);
      expect(d).toMatchObject({ action: 'deny', ruleId: null });
      expect(d.message).toContain('destructive');
      expect(winner([...rules, { id: 'mass', kinds: ['destructive'], action: 'review' }], c)).toBe('mass');
    });
    it('a restricted writing CTE is a write', () => {
      expect(winner(rules, pg('WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d'))).toBe('writes');
    });
    it('a SELECT calling pg_read_file is admin, not read', () => {
      const d = decide(policy(rules), identity(), 'app', pg("SELECT pg_read_file('/etc/passwd')"));
      expect(d).toMatchObject({ action: 'deny', ruleId: null, message: 'an admin statement is denied by the default policy (no rule matched)' });
    });
    it('INSERT … SELECT is a write', () => {
      expect(winner(rules, pg('INSERT INTO t SELECT * FROM s'))).toBe('writes');
    });
    it('a statement with no kinds is unknown', () => {
      expect(winner([{ id: 'u', kinds: ['unknown'], action: 'deny' }], one([]))).toBe('u');
    });
  });

  describe('tables: every table must match a glob', () => {
    const join = pg('SELECT * FROM public.users u JOIN orders o ON o.uid = u.id');
    it('all tables matched', () => {
      expect(winner([{ id: 'r', tables: ['public.*', 'orders'], action: 'allow' }], join)).toBe('r');
      expect(winner([{ id: 'r', tables: ['*'], action: 'allow' }], join)).toBe('r');
    });
    it('one table not matched is no match', () => {
      expect(winner([{ id: 'r', tables: ['public.*'], action: 'allow' }], join)).toBeNull();
      expect(winner([{ id: 'r', tables: ['users', 'orders'], action: 'allow' }], join)).toBeNull(); // written public.users
    });
    it('a deny or review rule catches a statement if any of its tables matches: joining another table does not escape it', () => {
      const rules: Rule[] = [
        { id: 'no-secrets', tables: ['secrets'], action: 'deny' },
        { id: 'reads', kinds: ['read'], action: 'allow' },
      ];
      expect(winner(rules, pg('SELECT * FROM secrets'))).toBe('no-secrets');
      expect(winner(rules, pg('SELECT * FROM secrets, users'))).toBe('no-secrets');
      expect(winner(rules, pg('SELECT * FROM users'))).toBe('reads');
      expect(winner([{ id: 'rv', tables: ['secrets'], action: 'review' }], pg('SELECT * FROM users JOIN secrets USING (id)'))).toBe('rv');
    });
    it('a statement touching no table matches only a rule with *', () => {
      const c = pg('SELECT 1');
      expect(winner([{ id: 'r', tables: ['public.*'], action: 'allow' }], c)).toBeNull();
      expect(winner([{ id: 'r', tables: ['public.*', '*'], action: 'allow' }], c)).toBe('r');
      expect(winner([{ id: 'r', tables: ['*'], action: 'allow' }], pg('DROP FUNCTION f()'))).toBe('r');
    });
    it('globs: * across schemas, ? one character', () => {
      expect(winner([{ id: 'r', tables: ['*.audit_?'], action: 'allow' }], one(['read'], ['app.audit_1']))).toBe('r');
      expect(winner([{ id: 'r', tables: ['*.audit_?'], action: 'allow' }], one(['read'], ['app.audit_10']))).toBeNull();
      expect(winner([{ id: 'r', tables: ['sales.*'], action: 'allow' }], one(['read'], ['salesforce.x']))).toBeNull();
    });
  });

  describe('claims', () => {
    const c = one(['read'], ['t']);
    const rule = (claims: Record<string, string>): Rule[] => [{ id: 'r', claims, action: 'allow' }];
    it.each([
      [{ repository_owner: 'acme' }, true],
      [{ repository_owner: 'ACME' }, false],
      [{ repository: 'acme/*' }, true],
      [{ repository: 'acme/web' }, false],
      [{ repository: 'acme/*', repository_owner: 'acme' }, true],
      [{ repository: 'acme/*', repository_owner: 'other' }, false], // every claim must match
      [{ run_attempt: '1' }, true], // numbers compare as text
      [{ groups: 'ops' }, true], // an array claim matches if any element does
      [{ groups: 'op?' }, true],
      [{ groups: 'admin' }, false],
      [{ nested: '*' }, false], // objects never match
      [{ missing: '*' }, false], // an absent claim never matches, not even *
      [{ sub: 'repo:acme/app:*' }, true], // pseudo-claim: the subject
      [{ sub: 'repo:acme/web:*' }, false],
      [{ build: 'acme/app/*' }, true], // pseudo-claim: the build id
      [{ build: 'acme/web/*' }, false],
    ] as [Record<string, string>, boolean][])('%j → %s', (claims, matches) => {
      expect(winner(rule(claims), c)).toBe(matches ? 'r' : null);
    });
    it('the build pseudo-claim never matches an identity without a build', () => {
      expect(winner(rule({ build: '*' }), c, identity({ build: null }))).toBeNull();
    });
    it('`sub` and `build` are the identity’s, not claims of those names', () => {
      const who = identity({ claims: { sub: 'forged', build: 'forged' } });
      expect(winner(rule({ sub: 'forged' }), c, who)).toBeNull();
      expect(winner(rule({ build: 'forged' }), c, who)).toBeNull();
    });
  });

  describe('subjects and builds', () => {
    const c = one(['write'], ['t']);
    it('subjects are globs on the subject', () => {
      expect(winner([{ id: 's', subjects: ['repo:acme/*'], action: 'allow' }], c)).toBe('s');
      expect(winner([{ id: 's', subjects: ['alice', 'repo:acme/app:ref:refs/heads/*'], action: 'allow' }], c)).toBe('s');
      expect(winner([{ id: 's', subjects: ['repo:acme/web:*'], action: 'allow' }], c)).toBeNull();
    });
    it('builds are globs on the build id; no build matches nothing', () => {
      expect(winner([{ id: 'b', builds: ['acme/app/*'], action: 'allow' }], c)).toBe('b');
      expect(winner([{ id: 'b', builds: ['acme/app/4242/?'], action: 'allow' }], c)).toBe('b');
      expect(winner([{ id: 'b', builds: ['acme/web/*'], action: 'allow' }], c)).toBeNull();
      expect(winner([{ id: 'b', builds: ['*'], action: 'allow' }], c, identity({ build: null }))).toBeNull();
    });
    it('every field of a rule must match', () => {
      const r: Rule = {
        id: 'all',
        targets: ['app'],
        kinds: ['write'],
        tables: ['t'],
        subjects: ['repo:*'],
        builds: ['acme/*'],
        claims: { repository_owner: 'acme' },
        action: 'allow',
      };
      expect(winner([r], c)).toBe('all');
      expect(winner([r], c, identity(), 'other')).toBeNull();
      expect(winner([r], one(['read'], ['t']))).toBeNull();
      expect(winner([r], one(['write'], ['u']))).toBeNull();
      expect(winner([r], c, identity({ subject: 'local:alice' }))).toBeNull();
      expect(winner([r], c, identity({ build: 'other/1' }))).toBeNull();
      expect(winner([r], c, identity({ claims: { repository_owner: 'evil' } }))).toBeNull();
    });
  });

  describe('several statements in one string', () => {
    const rules: Rule[] = [
      { id: 'reads', kinds: ['read'], action: 'allow' },
      { id: 'writes', kinds: ['write'], action: 'review' },
      { id: 'no-ddl', kinds: ['ddl'], action: 'deny' },
      { id: 'no-ddl-2', kinds: ['destructive'], action: 'deny' },
    ];
    it('the strictest decision stands: deny > review > allow', () => {
      expect(decide(policy(rules), identity(), 'app', pg('SELECT 1; SELECT 2'))).toMatchObject({ action: 'allow', ruleId: 'reads' });
      expect(decide(policy(rules), identity(), 'app', pg('SELECT 1; INSERT INTO t VALUES (1); SELECT 2'))).toMatchObject({
        action: 'review',
        ruleId: 'writes',
      });
      expect(decide(policy(rules), identity(), 'app', pg('INSERT INTO t VALUES (1); CREATE TABLE u (a int); SELECT 1'))).toMatchObject({
        action: 'deny',
        ruleId: 'no-ddl',
      });
      // The default counts as well.
      expect(decide(policy(rules), identity(), 'app', pg('SELECT 1; GRANT ALL ON t TO bob'))).toMatchObject({ action: 'deny', ruleId: null });
    });
    it('between equally strict decisions the more severe statement explains it, wherever it stands', () => {
      expect(decide(policy(rules), identity(), 'app', pg('CREATE TABLE u (a int); DROP TABLE t'))).toMatchObject({ ruleId: 'no-ddl-2' });
      expect(decide(policy(rules), identity(), 'app', pg('DROP TABLE t; CREATE TABLE u (a int)'))).toMatchObject({ ruleId: 'no-ddl-2' });
      const tie = decide(policy(rules), identity(), 'app', pg('CREATE TABLE u (a int); CREATE TABLE v (a int)'));
      expect(tie).toMatchObject({ ruleId: 'no-ddl' });
    });
    it('the kinds are the union over every statement', () => {
      const d = decide(policy(rules), identity(), 'app', pg('SELECT 1; UPDATE t SET a = 1 WHERE id = 1; DROP TABLE t; SELECT 2'));
      expect([...d.kinds].sort()).toEqual(['destructive', 'read', 'write']);
      const hand = decide(policy(rules), identity(), 'app', { statements: [st(['read']), st(['read', 'admin']), st(['write'])] });
      expect([...hand.kinds].sort()).toEqual(['admin', 'read', 'write']);
      expect(hand.action).toBe('deny');
    });
    it('decideStatement decides one statement alone', () => {
      expect(decideStatement(policy(rules), identity(), 'app', st(['write'], ['t']))).toEqual({
        action: 'review',
        ruleId: 'writes',
        message: "a write statement needs approval under rule 'writes'",
        kinds: ['write'],
      });
    });
    it('no statements at all (an empty or blank string) is a read of no table', () => {
      expect(decide(policy(rules), identity(), 'app', { statements: [] })).toMatchObject({ action: 'allow', ruleId: 'reads', kinds: ['read'] });
      expect(decide(policy([{ id: 't', tables: ['t'], action: 'allow' }]), identity(), 'app', pg('  ;  '))).toMatchObject({ action: 'deny' });
    });
  });

  describe('unparseable statements', () => {
    it('are unknown, refused by default, and the refusal says why the parser failed', () => {
      const d = decide(policy([{ id: 'reads', kinds: ['read'], action: 'allow' }]), identity(), 'app', pg('selec 1'));
      expect(d.action).toBe('deny');
      expect(d.ruleId).toBeNull();
      expect(d.kinds).toEqual(['unknown']);
      expect(d.message).toMatch(/^an unknown statement is denied by the default policy/);
      expect(d.message).toContain('could not be parsed: syntax error at or near "selec"');
    });
    it('a rule for unknown statements applies, and its refusal carries the parse error too', () => {
      const d = decide(policy([{ id: 'hold-unknown', kinds: ['unknown'], action: 'review', message: 'a human must look' }]), identity(), 'app', pg('selec 1'));
      expect(d).toMatchObject({ action: 'review', ruleId: 'hold-unknown' });
      expect(d.message).toMatch(/^a human must look \(the statement could not be parsed: syntax error/);
    });
    it('a catch-all allow rule lets it through without the parse note', () => {
      const d = decide(policy([{ id: 'yolo', action: 'allow' }]), identity(), 'app', pg('selec 1'));
      expect(d).toMatchObject({ action: 'allow', ruleId: 'yolo', message: "allowed by rule 'yolo'" });
    });
    it('a table-scoped rule never covers it (it touches no known table)', () => {
      expect(winner([{ id: 't', tables: ['t'], action: 'allow' }], pg('selec * from t'))).toBeNull();
    });
  });
});
