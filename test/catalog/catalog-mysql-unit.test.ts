// refineMysql: a MySQL classification judged by the target's catalog (pure, hand-made snapshots in MariaDB's own
// spelling): stored functions by declared data access and by body, views through to their base tables, and fail
// closed wherever a name cannot be resolved or the catalog could not be read.
import { describe, expect, it } from 'vitest';
import type { CatalogFunction, CatalogSnapshot, CatalogView } from '../../broker/catalog/types.js';
import { classify, decide, type PolicyConfig } from '../../broker/policy/index.js';
import { refineMysql, refineMysqlDetailed, viewBaseTables } from '../../broker/policy/mysql-catalog.js';
import { classifyRoutineBody } from '../../broker/policy/mysql-compound.js';
import type { Identity } from '../../broker/types.js';

function fn(name: string, body: string | null, dataAccess = 'MODIFIES SQL DATA', extra: Partial<CatalogFunction> = {}): CatalogFunction {
  return { oid: 0, schema: 'test', name, args: [0, 0], prokind: 'f', volatility: 'v', securityDefiner: true, language: 'SQL', dataAccess, body, ...extra };
}

function view(name: string, definition: string | null, schema = 'test'): CatalogView {
  return { schema, name, tables: [], functionOids: [], definition };
}

function snapshot(functions: CatalogFunction[], views: CatalogView[] = []): CatalogSnapshot {
  const group = <T extends { name: string }>(xs: T[]) => {
    const m = new Map<string, T[]>();
    for (const x of xs) m.set(x.name, [...(m.get(x.name) ?? []), x]);
    return m;
  };
  return { dialect: 'mysql', loadedAt: 0, functions: group(functions), functionsByOid: new Map(), operators: new Map(), views: group(views) };
}

const SNAP = snapshot(
  [
    fn('fw', "BEGIN INSERT INTO log VALUES ('fw'); RETURN 1; END"),
    fn('sneaky', "BEGIN INSERT INTO log VALUES ('sneaky'); RETURN 1; END", 'READS SQL DATA'),
    fn('twice', 'RETURN x * 2', 'NO SQL', { volatility: 'i', args: [1, 1] }),
    fn('plain', 'RETURN x + 1', 'CONTAINS SQL'),
    fn('count_secret', 'RETURN (SELECT COUNT(*) FROM secret)', 'READS SQL DATA'),
    fn('outer_fn', 'RETURN inner_fn() + 1', 'READS SQL DATA'),
    fn('inner_fn', 'BEGIN DELETE FROM log; RETURN 1; END', 'READS SQL DATA'),
    fn('loop_a', 'RETURN loop_b()', 'NO SQL'),
    fn('loop_b', 'RETURN loop_a()', 'NO SQL'),
    fn('hidden', null, 'READS SQL DATA'),
    fn('broken', 'BEGIN RETURN 1', 'READS SQL DATA'),
    fn('now', "BEGIN INSERT INTO log VALUES ('now'); RETURN 1; END"),
    fn('p', 'BEGIN DELETE FROM log; END', 'MODIFIES SQL DATA', { prokind: 'p' }),
    fn('my_udf', null, 'NO SQL', { schema: '', language: 'UDF', securityDefiner: false, dataAccess: null }),
  ],
  [
    view('v_plain', 'select `test`.`items`.`id` AS `id` from `test`.`items`'),
    view('v_secret', 'select `test`.`secret`.`id` AS `id`,`test`.`secret`.`v` AS `v` from `test`.`secret`'),
    view('v_calls', 'select `test`.`fw`() AS `x`'),
    view('v_of_v', 'select `v_secret`.`id` AS `id` from `test`.`v_secret`'),
    view('v_hidden', null),
  ],
);

const refined = (sql: string, snap: CatalogSnapshot | null = SNAP) => refineMysql(classify('mysql', sql), snap).statements[0]!;

describe('stored functions', () => {
  it.each([
    ['SELECT fw()', ['read', 'write'], 'it calls test.fw(), declared MODIFIES SQL DATA'],
    ['DO fw()', ['read', 'write'], 'it calls test.fw(), declared MODIFIES SQL DATA'],
    ['SET @x = fw()', ['read', 'write'], 'it calls test.fw(), declared MODIFIES SQL DATA'],
    ['WITH x AS (SELECT fw()) SELECT * FROM x', ['read', 'write'], 'it calls test.fw(), declared MODIFIES SQL DATA'],
    ['SELECT test.fw()', ['read', 'write'], 'it calls test.fw(), declared MODIFIES SQL DATA'],
    // The declaration is the author's word, not the server's: the body is read too.
    ['SELECT sneaky()', ['read', 'write'], 'it calls test.sneaky(), whose body runs a write statement'],
    ['SELECT outer_fn()', ['read', 'destructive'], 'it calls test.outer_fn(), which calls test.inner_fn(), whose body runs a destructive statement'],
    ['SELECT plain(1)', ['read', 'write'], 'it calls test.plain(), declared CONTAINS SQL'], // the default characteristic
    ['SELECT now ()', ['read', 'write'], 'it calls test.now(), declared MODIFIES SQL DATA'], // spaced: the stored `now`
  ])('%s', (sql, kinds, reason) => {
    const st = refined(sql);
    expect(st.kinds).toEqual(kinds);
    expect(st.reason).toBe(reason);
  });

  it('a NO SQL function, a built-in, and a built-in name the catalog does not define are reads', () => {
    for (const sql of ['SELECT twice(2)', 'SELECT now(), concat(1, 2)', 'SELECT count (1)', 'SELECT point(1, 2)']) {
      expect(refined(sql).kinds, sql).toEqual(['read']);
      expect(refined(sql).reason, sql).toBeUndefined();
    }
  });

  it('the tables a function body reads count as the statement’s', () => {
    expect(refined('SELECT count_secret()')).toMatchObject({ kinds: ['read'], tables: expect.arrayContaining(['test.secret', 'secret']) });
  });

  it.each([
    ['SELECT nowhere()', "it calls nowhere(), which is neither a built-in nor a function in the target's catalog"],
    ['SELECT other.fw()', "it calls other.fw(), which is neither a built-in nor a function in the target's catalog"],
    ['SELECT test.md5(1)', "it calls test.md5(), which is neither a built-in nor a function in the target's catalog"],
    ['SELECT p()', "it calls p(), which is neither a built-in nor a function in the target's catalog"], // a procedure is not a function
    ['SELECT hidden()', "it calls test.hidden(), whose body could not be read from the target's catalog"],
    ['SELECT broken()', "it calls test.broken(), whose body could not be read (the routine body could not be read: expected ';' at 'the end')"],
    ['SELECT loop_a()', 'it calls test.loop_a(), which calls test.loop_b(), which calls test.loop_a(), which refers back to itself'],
    ['SELECT my_udf(1)', 'it calls my_udf(), a loadable function (UDF) whose effects cannot be seen'],
    ['SELECT test.my_udf(1)', "it calls test.my_udf(), which is neither a built-in nor a function in the target's catalog"],
  ])('unknown: %s', (sql, reason) => {
    const st = refined(sql);
    expect(st.kinds).toContain('unknown');
    expect(st.reason).toBe(reason);
  });

  it('counts the calls the snapshot does not know, so a fresher one can be asked for', () => {
    expect(refineMysqlDetailed(classify('mysql', 'SELECT nowhere(), fw(), elsewhere(1)'), SNAP).unresolved).toBe(2);
    expect(refineMysqlDetailed(classify('mysql', 'SELECT fw()'), SNAP).unresolved).toBe(0);
  });
});

describe('routine bodies', () => {
  const LOOP = `BEGIN
    DECLARE done INT DEFAULT FALSE;
    DECLARE total INT DEFAULT g(1);
    DECLARE c CURSOR FOR SELECT id FROM items WHERE v > 0;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = TRUE;
    DECLARE EXIT HANDLER FOR SQLSTATE '23000', SQLEXCEPTION BEGIN RETURN -1; END;
    OPEN c;
    read_loop: LOOP
      FETCH c INTO x;
      IF done THEN LEAVE read_loop; END IF;
      IF x > 10 THEN SET total = total + 1; ELSEIF x < 0 THEN DELETE FROM items WHERE id = x; ELSE SET total = 0; END IF;
      CASE WHEN x = 1 THEN SET total = 0; ELSE BEGIN END; END CASE;
    END LOOP read_loop;
    CLOSE c;
    WHILE total > 0 DO SET total = total - 1; END WHILE;
    REPEAT SET total = total + 1; UNTIL total > (SELECT MAX(id) FROM other) END REPEAT;
    IF (SELECT CASE WHEN 1 THEN 1 END) THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'x'; END IF;
    RETURN total;
  END`;

  it('every statement and condition of a compound body counts, whichever branch runs', () => {
    const v = classifyRoutineBody(LOOP);
    expect(v.error).toBeUndefined();
    expect([...v.kinds].sort()).toEqual(['read', 'write']);
    expect([...v.tables].sort()).toEqual(['items', 'other']);
    expect(v.calls).toEqual([{ schema: null, name: 'g', args: 1 }]);
  });

  it.each([
    ['BEGIN FOR i IN 1..3 DO INSERT INTO t VALUES (i); END FOR; RETURN 1; END'], // not read: unknown
    ['BEGIN CALL p(); RETURN 1; END'],
    ['BEGIN RETURN 1'],
    ["BEGIN SET @s = 'DELETE FROM t'; PREPARE s FROM @s; EXECUTE s; RETURN 1; END"],
  ])('unknown: %s', (body) => {
    expect(classifyRoutineBody(body).kinds).toContain('unknown');
  });
});

describe('views', () => {
  it('a view adds its base tables, as schema.name and name, and says so', () => {
    const st = refined('SELECT * FROM v_secret');
    expect(st.kinds).toEqual(['read']);
    expect([...st.tables].sort()).toEqual(['secret', 'test.secret', 'v_secret']);
    expect(st.reason).toBe('it reads view test.v_secret, whose base tables count as its own');
  });

  it('views of views are followed, and writes through a view name its base tables too', () => {
    expect([...refined('SELECT * FROM test.v_of_v').tables].sort()).toEqual(['secret', 'test.secret', 'test.v_of_v']);
    expect(refined('UPDATE v_secret SET v = 1 WHERE id = 2')).toMatchObject({ kinds: ['read', 'write'], tables: expect.arrayContaining(['secret']) });
  });

  it('a view that calls a writing function writes', () => {
    expect(refined('SELECT * FROM v_calls')).toMatchObject({
      kinds: ['read', 'write'],
      reason: 'it reads view test.v_calls, which calls test.fw(), declared MODIFIES SQL DATA',
    });
  });

  it('a view whose definition cannot be read is unknown', () => {
    expect(refined('SELECT * FROM v_hidden')).toMatchObject({
      kinds: ['read', 'unknown'],
      reason: "it reads view test.v_hidden, whose definition could not be read from the target's catalog",
    });
  });

  it('a plain table and a view of plain tables stay reads', () => {
    expect(refined('SELECT * FROM items')).toEqual(classify('mysql', 'SELECT * FROM items').statements[0]);
    expect(refined('SELECT * FROM v_plain').kinds).toEqual(['read']);
    expect(viewBaseTables(SNAP, SNAP.views.get('v_of_v')![0]!)).toEqual(['test.secret']);
  });
});

describe('a request that redefines names', () => {
  it('after a statement that may redefine a function or view, the rest of the request is unknown', () => {
    const c = refineMysql(classify('mysql', 'CREATE OR REPLACE VIEW v_plain AS SELECT fw(); SELECT * FROM v_plain; SELECT 1'), SNAP);
    expect(c.statements.map((s) => s.kinds)).toEqual([['read', 'ddl'], ['read', 'unknown'], ['read']]); // the old view counts for the first
    expect(c.statements[1]!.reason).toBe(
      'an earlier statement of the same request (CREATE OR REPLACE VIEW v_plain AS SELECT fw()) may change what its functions and views are',
    );
    expect(refineMysql(classify('mysql', 'DELETE FROM log WHERE id = 1; SELECT * FROM v_plain'), SNAP).statements[1]!.kinds).toEqual(['read']);
  });
});

describe('without a catalog', () => {
  it('a statement naming a relation or a stored function is unknown; others are as they were', () => {
    const why = "the catalog of target 'app' could not be read (connect ECONNREFUSED)";
    for (const sql of ['SELECT * FROM items', 'SELECT fw()', 'SELECT now ()']) {
      const st = refineMysqlDetailed(classify('mysql', sql), null, why).classification.statements[0]!;
      expect(st.kinds, sql).toContain('unknown');
      expect(st.reason).toBe(`${why}, so what its functions and views do is not known`);
    }
    for (const sql of ['SELECT 1', 'SELECT now(), concat(1, 2)', 'BEGIN', 'SET @x = 1']) {
      const c = classify('mysql', sql);
      expect(refineMysql(c, null), sql).toBe(c);
    }
  });
});

describe('decisions', () => {
  const identity: Identity = { subject: 'ci:test', issuer: 'x', build: 'b', claims: {}, actors: [], tokenId: null, expiresAt: new Date(Date.now() + 60_000) };
  const ro: PolicyConfig = { rules: [{ id: 'ro', kinds: ['read'], action: 'allow' }], default: 'deny' };
  const decideOn = (sql: string, policy = ro) => decide(policy, identity, 'app', refineMysql(classify('mysql', sql), SNAP));

  it('a read-only rule no longer lets a writing function through, and the refusal says why', () => {
    const d = decideOn('SELECT fw()');
    expect(d).toMatchObject({ action: 'deny', ruleId: null, kinds: ['read', 'write'] });
    expect(d.message).toBe('a write statement is denied by the default policy (no rule matched): it calls test.fw(), declared MODIFIES SQL DATA');
    expect(decideOn('SELECT twice(2), * FROM v_plain')).toMatchObject({ action: 'allow', ruleId: 'ro' });
  });

  it('a deny on a base table cannot be escaped through a view', () => {
    const policy: PolicyConfig = { rules: [{ id: 'no-secret', tables: ['secret'], action: 'deny' }, ...ro.rules], default: 'deny' };
    expect(decideOn('SELECT * FROM v_of_v', policy)).toMatchObject({ action: 'deny', ruleId: 'no-secret' });
    expect(decideOn('SELECT * FROM v_plain', policy)).toMatchObject({ action: 'allow', ruleId: 'ro' });
  });

  it('is remembered per snapshot and classification', () => {
    const c = classify('mysql', 'SELECT fw(), * FROM v_secret');
    expect(refineMysql(c, SNAP)).toBe(refineMysql(c, SNAP));
  });
});
