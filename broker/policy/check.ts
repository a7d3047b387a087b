// `jit policy check`: decide SQL as the broker would, for an identity built from the command line — by names
// alone, or (`--catalog-from TARGET`) against what that target's catalog says its functions and views are.
import type { CatalogProvider } from '../catalog/index.js';
import type { Action, Identity, Kind, ReviewSettings, Target } from '../types.js';
import { classify, decide, decideStatement, loadPostgresParser, type Dialect, type PolicyConfig } from './index.js';

export interface CheckResult {
  target: string;
  action: Action;
  ruleId: string | null;
  message: string;
  kinds: Kind[];
  /** How approval would be asked for, when the action is review. */
  review?: ReviewSettings;
  error?: string;
  /** With a catalog: which target it was read from, and whether it could be (the error when not). */
  catalog?: { target: string; read: boolean; functions?: number; views?: number; parents?: number; error?: string };
  statements: { sql: string; action: Action; ruleId: string | null; kinds: Kind[]; tables: string[]; reason?: string }[];
}

export async function checkPolicy(
  policy: PolicyConfig,
  dialect: Dialect,
  target: string,
  sql: string,
  who: { subject: string; build: string | null; claims: Record<string, unknown> },
  catalog?: { provider: CatalogProvider; target: Target },
): Promise<CheckResult> {
  if (dialect === 'postgres') await loadPostgresParser(); // a MySQL target's check has no use for the PostgreSQL grammar
  const identity: Identity = {
    subject: who.subject,
    issuer: 'policy-check',
    build: who.build,
    claims: who.claims,
    actors: [],
    tokenId: null,
    expiresAt: new Date(Date.now() + 3600_000),
  };
  let c = classify(dialect, sql);
  let source: CheckResult['catalog'];
  if (catalog) {
    const snap = await catalog.provider.get(catalog.target);
    const name = catalog.target.name;
    source = snap
      ? { target: name, read: true, functions: snap.functionsByOid.size, views: count(snap.views), parents: count(snap.parents) }
      : { target: name, read: false, error: catalog.provider.problem(name) ?? 'unknown error' };
    c = catalog.provider.refine(catalog.target, c, snap).classification;
  }
  const whole = decide(policy, identity, target, c);
  return {
    target,
    action: whole.action,
    ruleId: whole.ruleId,
    message: whole.message,
    kinds: whole.kinds,
    ...(whole.review ? { review: whole.review } : {}),
    ...(c.error ? { error: c.error } : {}),
    ...(source ? { catalog: source } : {}),
    statements: c.statements.map((st) => {
      const d = decideStatement(policy, identity, target, st);
      return { sql: st.sql, action: d.action, ruleId: d.ruleId, kinds: st.kinds, tables: st.tables, ...(st.reason ? { reason: st.reason } : {}) };
    }),
  };
}

function count(m: ReadonlyMap<string, readonly unknown[]> | undefined): number {
  let n = 0;
  for (const l of m?.values() ?? []) n += l.length;
  return n;
}
