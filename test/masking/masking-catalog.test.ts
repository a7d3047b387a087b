// The catalog side of masking against the real PostgreSQL: user types classified (enum, domain, composite,
// arrays of them), column origins, and fail-closed behaviour when the catalog cannot be asked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCatalog } from '../../broker/engines/postgres/catalog.js';
import { PgMasking, type Described } from '../../broker/engines/postgres/masking.js';
import type { PgColumn } from '../../broker/engines/postgres/row-description.js';
import { MaskingPolicy } from '../../broker/masking/index.js';
import { loadPostgresParser } from '../../broker/policy/index.js';
import type { Identity } from '../../broker/types.js';
import { direct, UPSTREAM } from '../support/broker.js';

let oids: Record<string, number>;
const catalog = new PgCatalog(UPSTREAM);

beforeAll(async () => {
  await loadPostgresParser();
  oids = await direct(async (c) => {
    await c.query(`DROP TABLE IF EXISTS jit_cat_t; DROP TYPE IF EXISTS jit_addr, jit_mood; DROP DOMAIN IF EXISTS jit_email_d;
      CREATE TYPE jit_mood AS ENUM ('ok', 'sad');
      CREATE DOMAIN jit_email_d AS text;
      CREATE TYPE jit_addr AS (street text, contact jit_email_d, zip int);
      CREATE TABLE jit_cat_t (id int, mood jit_mood, email jit_email_d, addr jit_addr, moods jit_mood[], ranges int4range)`);
    const r = await c.query(`SELECT 'jit_cat_t'::regclass::oid::int AS t, 'jit_mood'::regtype::oid::int AS mood, 'jit_email_d'::regtype::oid::int AS dom,
      'jit_addr'::regtype::oid::int AS addr, 'jit_mood[]'::regtype::oid::int AS moods`);
    return r.rows[0] as Record<string, number>;
  });
});
afterAll(async () => {
  catalog.close();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_cat_t; DROP TYPE IF EXISTS jit_addr, jit_mood; DROP DOMAIN IF EXISTS jit_email_d'));
});

const col = (name: string, tableOid: number, attnum: number, typeOid: number): PgColumn => ({
  name,
  tableOid,
  attnum,
  typeOid,
  typlen: -1,
  typmod: -1,
  format: 0,
});

describe('PgCatalog', () => {
  it('classifies user types and resolves column origins in one lookup, then answers from its cache', async () => {
    const desc = [col('mood', oids.t!, 2, oids.mood!), col('addr', oids.t!, 4, oids.addr!), col('moods', oids.t!, 5, oids.moods!), col('x', 0, 0, 3904)];
    expect(catalog.covers(desc)).toBe(false);
    await catalog.resolve(desc);
    expect(catalog.covers(desc)).toBe(true);
    expect([oids.mood!, oids.dom!, oids.addr!, oids.moods!, 3904, 25, 23].map(catalog.kind)).toEqual([
      'text',
      'text',
      'record',
      'array',
      'opaque',
      'text',
      'opaque',
    ]);
    expect(catalog.origins(oids.t!, 3)).toEqual([{ schema: 'public', table: 'jit_cat_t', column: 'email' }]);
    expect(catalog.origins(oids.t!, 99)).toBeNull();
    expect(catalog.origins(1, 1)).toBeNull(); // not a table it knows
  });
});

describe('PgMasking', () => {
  const identity: Identity = { subject: 'ci:x', issuer: 'i', build: null, claims: {}, actors: [], tokenId: null, expiresAt: new Date(Date.now() + 60_000) };
  const rules = (yaml: { columns?: string[]; detect?: string[] }) =>
    MaskingPolicy.create({ rules: [{ ...yaml, with: 'redact' }], detectors: {} }, { dataDir: '/nonexistent' })!.forSession(identity, 'app')!;

  it('fails closed when the catalog cannot be asked: columns with a table origin become NULL', async () => {
    const broken = new PgCatalog('postgres://postgres@127.0.0.1:1/test', { timeoutMs: 2000 });
    const m = new PgMasking(rules({ columns: ['*.email'] }), broken, () => {});
    const d: Described = { desc: [col('email', 123456, 2, 25), col('now', 0, 0, 25)], resolved: null };
    await m.resolve(d);
    const plan = m.plan(d, d.desc)!;
    expect(plan.columns[0]!.masker!('alice@example.com')).toBeNull();
    expect(plan.columns[1]).toBeNull(); // computed, and no detectors or derived rule
    broken.close();
  });

  it('with detectors only, an unreachable catalog leaves the detectors to do their work', async () => {
    const broken = new PgCatalog('postgres://postgres@127.0.0.1:1/test', { timeoutMs: 2000 });
    const m = new PgMasking(rules({ detect: ['email'] }), broken, () => {});
    const d: Described = { desc: [col('email', 123456, 2, 25)], resolved: null };
    await m.resolve(d);
    expect(m.plan(d, d.desc)!.columns[0]).toMatchObject({ masker: null, detect: true });
    broken.close();
  });

  it('refuses COPY … TO STDOUT with column rules, binary COPY with detectors; COPY FROM and TO a file are not its business', () => {
    const cols = new PgMasking(rules({ columns: ['*.email'] }), catalog, () => {});
    const det = new PgMasking(rules({ detect: ['email'] }), catalog, () => {});
    expect(cols.refusal('copy t to stdout')).toMatch(/COPY … TO STDOUT is refused/);
    expect(cols.refusal('SELECT 1; COPY (SELECT 1) TO STDOUT')).toMatch(/refused/);
    expect(cols.refusal('COPY t FROM STDIN')).toBeUndefined();
    expect(cols.refusal("COPY t TO '/tmp/x'")).toBeUndefined();
    expect(det.refusal('COPY t TO STDOUT WITH (FORMAT csv)')).toBeUndefined();
    expect(det.refusal('COPY t TO STDOUT (FORMAT binary)')).toMatch(/binary COPY/);
    expect(det.refusal('COPY t TO STDOUT BINARY')).toMatch(/binary COPY/);
  });
});
