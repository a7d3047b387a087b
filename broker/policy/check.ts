// `jit policy check`: decide SQL as the broker would, for an identity built from the command line.
import type { ReviewSettings } from '../approvals/types.js';
import type { Action, Identity, Kind } from '../types.js';
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
  statements: { sql: string; action: Action; ruleId: string | null; kinds: Kind[]; tables: string[] }[];
}

export async function checkPolicy(
  policy: PolicyConfig,
  dialect: Dialect,
  target: string,
  sql: string,
  who: { subject: string; build: string | null; claims: Record<string, unknown> },
): Promise<CheckResult> {
  await loadPostgresParser();
  const identity: Identity = { subject: who.subject, issuer: 'policy-check', build: who.build, claims: who.claims, actors: [], tokenId: null, expiresAt: new Date(Date.now() + 3600_000) };
  const c = classify(dialect, sql);
  const whole = decide(policy, identity, target, c);
  return {
    target,
    action: whole.action,
    ruleId: whole.ruleId,
    message: whole.message,
    kinds: whole.kinds,
    ...(whole.review ? { review: whole.review } : {}),
    ...(c.error ? { error: c.error } : {}),
    statements: c.statements.map((st) => {
      const d = decideStatement(policy, identity, target, st);
      return { sql: st.sql, action: d.action, ruleId: d.ruleId, kinds: st.kinds, tables: st.tables };
    }),
  };
}
