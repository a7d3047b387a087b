// refinePostgres on hand-made catalog snapshots: how calls, operators and views are resolved and judged (no database).
import { beforeAll, describe, expect, it } from 'vitest';
import type { CatalogFunction, CatalogParent, CatalogSnapshot, CatalogView } from '../../broker/catalog/types.js';
import { Catalogs } from '../../broker/catalog/index.js';
import { ConfigError, parseConfig } from '../../broker/config.js';
import { classifyPostgres, loadPostgresParser } from '../../broker/policy/classify-postgres.js';
import { decide } from '../../broker/policy/decide.js';
import { afterStatement, NOTHING_PENDING, refinePostgres, refinePostgresDetailed } from '../../broker/policy/pg-refine.js';
import { doubtful, pgDefinedNames } from '../../broker/policy/pg-defines.js';

beforeAll(() => loadPostgresParser());

let oid = 100_000;
function fn(schema: string, name: string, o: Partial<CatalogFunction> = {}): CatalogFunction {
  return {
    oid: ++oid,
    schema,
    name,
    args: [0, 0],
    prokind: 'f',
    volatility: 'v',
    securityDefiner: false,
    language: 'plpgsql',
    dataAccess: null,
    body: null,
    ...o,
  };
}
const sqlFn = (schema: string, name: string, body: string, o: Partial<CatalogFunction> = {}) =>
  fn(schema, name, { language: 'sql', body: `CREATE OR REPLACE FUNCTION ${schema}.${name}() RETURNS int LANGUAGE sql AS $f$${body}$f$`, ...o });

function snapshot(fns: CatalogFunction[], opts: { operators?: Record<string, CatalogFunction[]>; views?: CatalogView[] } = {}): CatalogSnapshot {
  const functions = new Map<string, CatalogFunction[]>();
  for (const f of fns) functions.set(f.name.toLowerCase(), [...(functions.get(f.name.toLowerCase()) ?? []), f]);
  const views = new Map<string, CatalogView[]>();
  for (const v of opts.views ?? []) views.set(v.name, [...(views.get(v.name) ?? []), v]);
  return {
    dialect: 'postgres',
    loadedAt: Date.now(),
    functions,
    functionsByOid: new Map(fns.map((f) => [f.oid, f])),
    operators: new Map(Object.entries(opts.operators ?? {})),
    views,
  };
}

const builtins = [
  fn('pg_catalog', 'lower', { args: [1, 1], volatility: 'i', language: 'internal' }),
  fn('pg_catalog', 'now', { volatility: 's', language: 'internal' }),
  fn('pg_catalog', 'random', { language: 'internal' }),
  fn('pg_catalog', 'nextval', { args: [1, 1], language: 'internal' }),
  fn('pg_catalog', 'count', { args: [0, 1], volatility: 'i', prokind: 'a', language: 'internal' }),
  fn('pg_catalog', 'concat', { args: [0, Infinity], volatility: 's', language: 'internal' }),
];
const writer = fn('public', 'f', { body: 'CREATE FUNCTION public.f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log VALUES (1); RETURN 1; END $$' });
const stable = sqlFn('public', 'nice', 'SELECT count(*)::int FROM t', { volatility: 's' });
const wrapper = sqlFn('public', 'wrap', 'SELECT public.f()', { volatility: 's' });
const loopA = sqlFn('public', 'loop_a', 'SELECT public.loop_b()', { volatility: 's' });
const loopB = sqlFn('public', 'loop_b', 'SELECT public.loop_a(); DELETE FROM t WHERE id = 1', { volatility: 's' });
const shadow = sqlFn('public', 'lower', 'DELETE FROM t', { args: [1, 1] });
const snap = snapshot([...builtins, writer, stable, wrapper, loopA, loopB, shadow]);

const refine = (sql: string, s: CatalogSnapshot | null = snap) => refinePostgres(classifyPostgres(sql), s).statements[0]!;

describe('refinePostgres: calls', () => {
  it.each([
    ['SELECT f()', ['read', 'write']],
    ['SELECT * FROM f()', ['read', 'write']],
    ['SELECT nice()', ['read']],
    ['SELECT wrap()', ['read', 'write']], // STABLE, but its body calls a volatile function
    ['SELECT loop_a()', ['read', 'write']], // a cycle, followed once around
    ['SELECT loop_b()', ['read', 'write']],
    ['SELECT lower(1)', ['read', 'write', 'destructive']], // public.lower(int) is a candidate too: VOLATILE, DELETE
    ["SELECT pg_catalog.lower('A')", ['read']], // qualified: the built-in only
    ['SELECT now(), random(), count(*), concat(1, 2, 3, 4)', ['read']],
    ["SELECT nextval('s')", ['read', 'write']],
    ['SELECT missing()', ['read', 'unknown']],
    ['SELECT public.now()', ['read', 'unknown']], // no such function in public
    ['SELECT f(1)', ['read', 'unknown']], // f takes no argument
    ['SELECT t.id FROM t', ['read']], // attribute notation that is a column
    ['EXPLAIN SELECT wrap()', ['read', 'write']], // the planner may fold a stable call
    ['CREATE VIEW v AS SELECT f()', ['read', 'ddl']], // stored, not run
  ])('%s → %j', (sql, kinds) => {
    expect(refine(sql).kinds).toEqual(kinds);
  });

  it('says why, naming the function and the chain', () => {
    expect(refine('SELECT f()').reason).toBe('it calls public.f(), which is VOLATILE');
    expect(refine('SELECT wrap()').reason).toBe('it calls public.wrap(), which calls public.f(), which is VOLATILE');
    expect(refine('SELECT missing()').reason).toMatch(/missing\(\) with 0 arguments, which is not a function in the target's catalog/);
    expect(refinePostgresDetailed(classifyPostgres('SELECT missing()'), snap).unresolved).toBe(1);
  });

  it('SECURITY DEFINER writes; a procedure, an unreadable language and a body with dynamic SQL are unknown', () => {
    const secdef = fn('public', 'sd', {
      volatility: 's',
      securityDefiner: true,
      language: 'sql',
      body: 'CREATE FUNCTION public.sd() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
    });
    const perl = fn('public', 'pl', { volatility: 'i', language: 'plperl' });
    const proc = fn('public', 'pr', { prokind: 'p', language: 'sql' });
    const dyn = fn('public', 'dyn', {
      volatility: 's',
      body: "CREATE FUNCTION public.dyn() RETURNS int LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('SELECT %s', 1); RETURN 1; END $$",
    });
    const uuid = fn('public', 'uuid_generate_v4', { language: 'c' });
    const s = snapshot([secdef, perl, proc, dyn, uuid]);
    expect(refine('SELECT sd()', s).kinds).toEqual(['read', 'write']);
    expect(refine('SELECT pl()', s).kinds).toEqual(['read', 'unknown']);
    expect(refine('SELECT pr()', s).kinds).toEqual(['read', 'unknown']);
    expect(refine('SELECT dyn()', s).kinds).toEqual(['read', 'unknown']);
    expect(refine('SELECT uuid_generate_v4()', s).kinds).toEqual(['read']); // an extension's C function known to change nothing
  });

  it('an aggregate is what its support functions do', () => {
    const sfunc = fn('public', 'acc', {
      args: [2, 2],
      body: 'CREATE FUNCTION public.acc(a int, b int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t WHERE id = b; RETURN a; END $$',
    });
    const agg = fn('public', 'agg', { args: [1, 1], prokind: 'a', volatility: 'i', language: 'internal', runs: [sfunc.oid] });
    expect(refine('SELECT agg(x) FROM t', snapshot([sfunc, agg])).kinds).toEqual(['read', 'write']);
  });
});

describe('refinePostgres: operators and views', () => {
  const eq = fn('public', 'writer_eq', { args: [2, 2], language: 'c' });
  const v: CatalogView = { schema: 'public', name: 'v', tables: ['public.secret'], functionOids: [eq.oid], definition: null };
  const vSeq: CatalogView = { schema: 'public', name: 'v_seq', tables: [], functionOids: [], definition: "SELECT nextval('public.s'::regclass) AS n" };
  const vAuth: CatalogView = { schema: 'app', name: 'v_auth', tables: [], functionOids: [], definition: 'SELECT rolname, rolpassword FROM pg_authid' };
  const s = snapshot([...builtins, eq], { operators: { '===': [eq] }, views: [v, vSeq, vAuth] });

  it('a user-defined operator runs its function', () => {
    expect(refine('SELECT 1 === 2', s).kinds).toEqual(['read', 'write']);
    expect(refine('SELECT 1 = 2', s).kinds).toEqual(['read']);
  });

  it('a view adds its base tables and what its functions do', () => {
    const st = refine('SELECT * FROM v', s);
    expect(st.kinds).toEqual(['read', 'write']);
    expect(st.tables).toEqual(expect.arrayContaining(['v', 'public.secret', 'secret']));
    expect(refine('TABLE public.v', s).tables).toContain('public.secret');
    expect(refine('SELECT * FROM other.v', s).tables).toEqual(['other.v']); // another schema's v is not this view
  });

  it('built-ins a view calls or reads are seen in its definition (pg_depend does not list them)', () => {
    expect(refine('SELECT * FROM v_seq', s).kinds).toEqual(['read', 'write']);
    expect(refine('SELECT * FROM v_auth', s).kinds).toEqual(['read', 'admin']);
  });
});

describe('refinePostgres: casts', () => {
  const check = fn('public', 'writer_check', { args: [1, 1], language: 'c' });
  const cast = fn('public', 'writer_cast', { args: [1, 1], language: 'c' });
  const s = snapshot([...builtins, check, cast]);
  const withCasts: CatalogSnapshot = {
    ...s,
    casts: new Map([
      ['checked', [check]],
      ['int4', [cast]],
    ]),
  };

  it('a cast to a domain runs its CHECK; a user-defined cast, its function, whatever it casts from', () => {
    expect(refine("SELECT '1'::checked", withCasts).kinds).toEqual(['read', 'write']);
    expect(refine('SELECT CAST(x AS checked) FROM t', withCasts).reason).toBe('it casts to checked, which runs public.writer_check(), which is VOLATILE');
    // With a user's writing cast to int4 in the catalog, every cast to int (the source is not known) is one.
    expect(refine('SELECT x::int FROM t', withCasts).kinds).toEqual(['read', 'write']);
    expect(refine('SELECT int4(x) FROM t', withCasts).kinds).toContain('write'); // a cast written as a call (no int4() here: unknown too)
    expect(refine('SELECT x::int, y::text FROM t', s).kinds).toEqual(['read']);
  });
});

describe('refinePostgres: partitions and inheritance children', () => {
  // measures ⊃ part_a, secret_part_b ⊃ secret_part_b1 (a partition of a partition); other.measures ⊃ other.m1.
  const measures: CatalogParent = { schema: 'public', name: 'measures', descendants: ['public.part_a', 'public.secret_part_b', 'public.secret_part_b1'] };
  const partB: CatalogParent = { schema: 'public', name: 'secret_part_b', descendants: ['public.secret_part_b1'] };
  const other: CatalogParent = { schema: 'other', name: 'measures', descendants: ['other.m1'] };
  const view: CatalogView = { schema: 'public', name: 'v_measures', tables: ['public.measures'], functionOids: [], definition: null };
  const reader = sqlFn('public', 'reader', 'SELECT count(*)::int FROM public.measures', { volatility: 's' });
  const s: CatalogSnapshot = {
    ...snapshot([...builtins, reader], { views: [view] }),
    parents: new Map([
      ['measures', [measures, other]],
      ['secret_part_b', [partB]],
    ]),
  };
  const everything = ['public.secret_part_b', 'secret_part_b', 'public.secret_part_b1', 'secret_part_b1', 'public.part_a', 'part_a'];

  it.each([
    ['SELECT * FROM measures'],
    ['SELECT count(*) FROM public.measures WHERE id > 3'],
    ['UPDATE measures SET x = 1 WHERE id = 2'],
    ['DELETE FROM public.measures WHERE id = 1'],
    ['COPY (SELECT * FROM measures) TO STDOUT'],
    ['TRUNCATE measures'],
    ['SELECT * FROM ONLY measures m1, measures m2'], // named without ONLY as well
    ['SELECT * FROM ONLY measures WHERE id IN (SELECT id FROM measures)'],
    ['DO $$ BEGIN PERFORM * FROM ONLY measures; END $$'], // ONLY inside SQL in SQL is not followed: counted
    ['SELECT * FROM v_measures'], // a view over the parent
    ['SELECT reader()'], // a function whose body reads the parent
  ])('%s touches every partition, at every level', (sql) => {
    expect(refine(sql, s).tables).toEqual(expect.arrayContaining(everything));
  });

  it.each([
    ['SELECT * FROM ONLY measures', ['measures']],
    ['UPDATE ONLY public.measures SET x = 1 WHERE id = 2', ['public.measures']],
    ['DELETE FROM ONLY measures WHERE id = 1', ['measures']],
    ['SELECT * FROM part_a', ['part_a']], // a leaf
    ['SELECT * FROM secret_part_b', ['secret_part_b', 'public.secret_part_b1', 'secret_part_b1']], // a sub-partitioned partition
    ['SELECT * FROM other.measures', ['other.measures', 'other.m1', 'm1']], // another schema's table of that name
  ])('%s touches %j', (sql, tables) => {
    expect(refine(sql, s).tables).toEqual(tables);
  });

  it('a table attached or made a child in the open transaction (or earlier in the request) counts at once', () => {
    const after = (sql: string) => afterStatement(NOTHING_PENDING, sql, ['ddl']);
    const tables = (sql: string, ddl: string) => refinePostgresDetailed(classifyPostgres(sql), s, undefined, after(ddl)).classification.statements[0]!.tables;
    const attach = "ALTER TABLE measures ATTACH PARTITION public.secret_new FOR VALUES IN ('x')";
    expect(tables('SELECT * FROM measures', attach)).toEqual(expect.arrayContaining(['public.secret_new', 'secret_new', 'secret_part_b1']));
    expect(tables('SELECT * FROM ONLY measures', attach)).toEqual(['measures']);
    // Below a partition: the tables above it reach it too.
    expect(tables('SELECT * FROM public.measures', 'CREATE TABLE secret_deeper PARTITION OF secret_part_b FOR VALUES FROM (1000) TO (2000)')).toContain(
      'secret_deeper',
    );
    // A table with no children becomes a parent; one with children brings them along.
    expect(tables('SELECT * FROM part_a', 'ALTER TABLE secret_kid INHERIT part_a')).toEqual(['part_a', 'secret_kid']);
    expect(tables('SELECT * FROM part_a', 'CREATE TABLE secret_kid () INHERITS (part_a, other.measures)')).toEqual(['part_a', 'secret_kid']);
    expect(tables('SELECT * FROM other.measures', "ALTER TABLE other.measures ATTACH PARTITION secret_part_b FOR VALUES IN ('b')")).toEqual(
      expect.arrayContaining(['secret_part_b', 'public.secret_part_b1']),
    );
    const c = classifyPostgres(`${attach}; SELECT * FROM measures`);
    expect(refinePostgres(c, s).statements[1]!.tables).toContain('secret_new');
  });

  it('the classifier records what is named only with ONLY', () => {
    expect(classifyPostgres('SELECT * FROM ONLY s.p JOIN q ON true').statements[0]).toMatchObject({ tables: ['q', 's.p'], only: ['s.p'] });
    expect(classifyPostgres('UPDATE ONLY p SET a = 1; TRUNCATE ONLY p; SELECT * FROM p').statements.map((st) => st.only)).toEqual([['p'], ['p'], undefined]);
    expect(classifyPostgres('SELECT * FROM ONLY p, p').statements[0]!.only).toBeUndefined();
  });

  it('says why, and a deny rule on a partition refuses the parent but not ONLY it nor a sibling', () => {
    expect(refine('SELECT * FROM public.measures', s).reason).toBe(
      'public.measures reaches its partitions and inheritance children too (public.part_a, public.secret_part_b, public.secret_part_b1; ONLY measures would not)',
    );
    const policy = {
      rules: [
        { id: 'no-secret', tables: ['secret_part*'], action: 'deny' as const },
        { id: 'rw', kinds: ['read' as const, 'write' as const], action: 'allow' as const },
      ],
      default: 'deny' as const,
    };
    const who = { subject: 'ci', issuer: 'x', build: null, claims: {}, actors: [], tokenId: null, expiresAt: new Date(Date.now() + 60_000) };
    const decided = (sql: string) => decide(policy, who, 'app', refinePostgres(classifyPostgres(sql), s));
    expect(decided('SELECT * FROM measures')).toMatchObject({
      action: 'deny',
      ruleId: 'no-secret',
      message: expect.stringContaining('reaches its partitions'),
    });
    expect(decided('UPDATE measures SET x = 1 WHERE id = 2')).toMatchObject({ action: 'deny', ruleId: 'no-secret' });
    expect(decided('SELECT * FROM ONLY measures')).toMatchObject({ action: 'allow', ruleId: 'rw' });
    expect(decided('SELECT * FROM part_a')).toMatchObject({ action: 'allow', ruleId: 'rw' });
  });
});

describe('refinePostgres without a catalog: fail closed', () => {
  it('whatever names a relation, function or operator is unknown; the rest stands', () => {
    expect(refine('SELECT * FROM t', null)).toMatchObject({ kinds: ['read', 'unknown'], reason: expect.stringMatching(/could not be read/) });
    expect(refine('SELECT now()', null).kinds).toEqual(['read', 'unknown']);
    expect(refine('SELECT 1 + 1', null).kinds).toEqual(['read', 'unknown']);
    expect(refine('SELECT 1', null).kinds).toEqual(['read']);
    expect(refine('BEGIN', null).kinds).toEqual(['read']);
  });
});

describe('uncommitted DDL in the session: what it redefined is in doubt', () => {
  it('pgDefinedNames lists views, functions, operators and row-security tables', () => {
    expect(pgDefinedNames('CREATE OR REPLACE FUNCTION s.F() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$')).toEqual(['f']);
    expect(pgDefinedNames('CREATE VIEW v AS SELECT * FROM t; CREATE OPERATOR === (function = f, leftarg = int, rightarg = int)')).toEqual(['v', '===']);
    expect(pgDefinedNames('ALTER VIEW v RENAME TO w')).toEqual(['v', 'w']);
    expect(pgDefinedNames('CREATE TABLE t (id int); ALTER TABLE t ADD COLUMN x int; CREATE INDEX ON t (id)')).toEqual([]);
    expect(pgDefinedNames('ALTER TABLE t ENABLE ROW LEVEL SECURITY')).toEqual(['t']);
    expect(pgDefinedNames('DO $$ BEGIN END $$')).toBeNull();
    expect(pgDefinedNames('CREATE EXTENSION hstore')).toBeNull();
  });

  it('doubtful makes statements naming them unknown, and leaves others', () => {
    const c = classifyPostgres('SELECT f(); SELECT * FROM t; SELECT * FROM v');
    const d = doubtful(c, new Set(['f', 'v']));
    expect(d.statements.map((s) => s.kinds)).toEqual([['read', 'unknown'], ['read'], ['read', 'unknown']]);
    expect(d.statements[0]!.reason).toMatch(/COMMIT first/);
    expect(doubtful(classifyPostgres('SELECT * FROM t; SELECT 1'), 'all').statements.map((s) => s.kinds)).toEqual([['read', 'unknown'], ['read']]);
  });

  it('a view (re)defined earlier in the request or the open transaction is judged by its new query', () => {
    const c = classifyPostgres('CREATE OR REPLACE VIEW v_new AS SELECT f() AS n; SELECT * FROM v_new; CREATE VIEW v_ok AS SELECT 1 AS n; SELECT * FROM v_ok');
    const st = refinePostgres(c, snap).statements;
    expect(st[1]).toMatchObject({ kinds: ['read', 'write'], reason: 'it reads v_new as this session redefined it, which calls public.f(), which is VOLATILE' });
    expect(st[3]!.kinds).toEqual(['read']);
    // The same across requests, while the transaction that redefined it is open.
    const pending = afterStatement(NOTHING_PENDING, 'CREATE VIEW s.v_tx AS SELECT * FROM secret', ['ddl', 'read']);
    const later = refinePostgresDetailed(classifyPostgres('SELECT * FROM s.v_tx'), snap, undefined, pending).classification.statements[0]!;
    expect(later.tables).toEqual(expect.arrayContaining(['s.v_tx', 'secret']));
  });

  it('in one request, a statement after one that redefines what it calls is judged before that runs: unknown', () => {
    const c = classifyPostgres(
      "SELECT nice(); CREATE OR REPLACE FUNCTION public.nice() RETURNS int LANGUAGE sql AS 'DELETE FROM t WHERE id = 1; SELECT 1'; SELECT nice(); SELECT now()",
    );
    expect(refinePostgres(c, snap).statements.map((s) => s.kinds)).toEqual([['read'], ['read', 'write', 'ddl'], ['read', 'unknown'], ['read']]);
  });
});

describe('the classifier records calls and operators for the catalog', () => {
  it('where they run, with the schema as written and the arity; not in stored definitions', () => {
    expect(classifyPostgres('SELECT s.f(1, 2), (SELECT g()) FROM t WHERE a === b').statements[0]).toMatchObject({
      calls: [
        { schema: 's', name: 'f', args: 2 },
        { schema: null, name: 'g', args: 0 },
      ],
      operators: ['==='],
    });
    expect(classifyPostgres('SELECT U&"\\0066"()').statements[0]!.calls).toEqual([{ schema: null, name: 'f', args: 0 }]);
    expect(classifyPostgres('DO $$ BEGIN PERFORM f(1); END $$').statements[0]!.calls).toEqual([{ schema: null, name: 'f', args: 1 }]);
    expect(classifyPostgres('DECLARE c CURSOR FOR SELECT f()').statements[0]!.calls).toHaveLength(1);
    expect(classifyPostgres('CREATE FUNCTION x() RETURNS int LANGUAGE sql AS $$ SELECT f() $$').statements[0]!.calls).toBeUndefined();
    expect(classifyPostgres('CREATE VIEW v AS SELECT f()').statements[0]!.calls).toBeUndefined();
    expect(classifyPostgres('ALTER TABLE t ADD COLUMN x int DEFAULT f()').statements[0]!.calls).toHaveLength(1); // runs on every row
  });
});

describe('targets.<name>.catalog_ttl', () => {
  const opts = { file: null, baseDir: '.', env: {} };
  const parse = (ttl: string) => parseConfig(`targets:\n  app: { engine: postgres, upstream: "postgres://x@h/db", catalog_ttl: ${ttl} }\n`, opts);
  it('is a duration of at least a second; absent, the catalog is trusted 60 s', () => {
    expect(parse('2m').targets.app!.catalog_ttl).toBe(120);
    expect(() => parse('0')).toThrow(ConfigError);
    expect(parseConfig('targets:\n  app: { engine: postgres, upstream: "postgres://x@h/db" }\n', opts).targets.app!.catalog_ttl).toBeUndefined();
  });
});

describe('Catalogs: one snapshot per target, shared loads, invalidation, fail closed', () => {
  const target = { name: 'app', engine: 'postgres' as const, upstream: 'postgres://x@h/db' };
  it('loads once for concurrent sessions, again after invalidate(), and is null (with the error) when it cannot', async () => {
    let loads = 0;
    let fail = false;
    const catalogs = new Catalogs({
      loaders: {
        postgres: async () => {
          loads++;
          if (fail) throw new Error('connection refused');
          return snapshot([writer]);
        },
      },
    });
    expect(catalogs.current(target)).toBeUndefined();
    const [a, b] = await Promise.all([catalogs.get(target), catalogs.get(target)]);
    expect(loads).toBe(1);
    expect(a).toBe(b);
    expect(catalogs.current(target)).toBe(a);
    catalogs.invalidate('app');
    expect(catalogs.current(target)).toBeUndefined();
    fail = true;
    expect(await catalogs.get(target)).toBeNull();
    expect(loads).toBe(2);
    expect(catalogs.problem('app')).toBe('connection refused');
    const refused = catalogs.refine(target, classifyPostgres('SELECT * FROM t'), null).classification.statements[0]!;
    expect(refused.kinds).toContain('unknown');
    expect(refused.reason).toMatch(/catalog of target 'app' could not be read \(connection refused\)/);
  });
});
