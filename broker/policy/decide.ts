// Rules → Decision. Pure: no I/O, so it is cheap to call per statement and easy to test exhaustively.
import type { Action, Classification, ClassifiedStatement, Decision, Identity, Kind, ReviewSettings } from '../types.js';
import { KINDS } from '../types.js';
import { identityScope, outOfScope } from '../identity/limits.js';
import { claimMatches, globMatch } from './glob.js';

export interface Rule {
  id: string;
  targets?: string[];
  kinds?: Kind[];
  tables?: string[];
  claims?: Record<string, string>;
  subjects?: string[];
  builds?: string[];
  /**
   * Delegation chain (Identity.actors) globs. An `allow` rule covers an identity only if EVERY actor of
   * its chain matches; a `deny`/`review` rule catches it if ANY does. Never matches a token used
   * directly (no actors).
   */
  actors?: string[];
  /** Delegation depth (length of the actor chain; 0 for a token used directly) at least / at most. */
  min_depth?: number;
  max_depth?: number;
  /** Token scopes (the ceiling of a broker-minted token's `scope`); never matches an unscoped token. */
  scopes?: Kind[];
  action: Action;
  message?: string;
  /** Review settings (meaningful with `action: review`); see DEFAULT_REVIEW for what is assumed when absent. */
  approvers?: string[];
  /** Seconds. */
  timeout?: number;
  min_approvals?: number;
  scope?: 'statement' | 'session';
  /** Break-glass: results of the statements this rule decides are not masked (allow and review rules). */
  exempt_masking?: boolean;
}

/** A review rule that says nothing else (and `default: review`): anyone may approve, within 5 minutes, once. */
export const DEFAULT_REVIEW: Readonly<ReviewSettings> = Object.freeze({ approvers: [], timeoutSeconds: 300, minApprovals: 1, scope: 'statement' });

/** The review settings of a rule (or of the default policy when `rule` is undefined), defaults filled in. */
export function reviewSettings(rule: Rule | undefined): ReviewSettings {
  return {
    approvers: [...(rule?.approvers ?? DEFAULT_REVIEW.approvers)],
    timeoutSeconds: rule?.timeout ?? DEFAULT_REVIEW.timeoutSeconds,
    minApprovals: rule?.min_approvals ?? DEFAULT_REVIEW.minApprovals,
    scope: rule?.scope ?? DEFAULT_REVIEW.scope,
  };
}

export interface PolicyConfig {
  rules: Rule[];
  default: Action;
}

const SEVERITY = new Map<Kind, number>(KINDS.map((k, i) => [k, i]));
const STRICTNESS: Record<Action, number> = { allow: 0, review: 1, deny: 2 };

/** The most severe of a statement's kinds decides which rules apply to it. */
export function mostSevere(kinds: readonly Kind[]): Kind {
  let worst: Kind = 'unknown';
  let w = -1;
  for (const k of kinds) {
    const s = SEVERITY.get(k) ?? Infinity;
    if (s > w) [worst, w] = [k, s];
  }
  return kinds.length ? worst : 'unknown';
}

/**
 * An `allow` rule covers a statement only if every table it touches matches a glob; a `deny` or
 * `review` rule catches it if any table does — so neither can be side-stepped by joining another table.
 * A statement that touches no table (`SELECT 1`, `DROP FUNCTION f`) matches only a rule that says `*`.
 */
function tablesMatch(globs: string[], tables: string[], action: Action): boolean {
  if (tables.length === 0) return globs.includes('*');
  const hit = (t: string) => globs.some((g) => globMatch(g, t));
  return action === 'allow' ? tables.every(hit) : tables.some(hit);
}

/** Like tables: an allow rule needs every actor of the chain to match, deny/review any; no chain, no match. */
function actorsMatch(globs: string[], actors: string[], action: Action): boolean {
  if (actors.length === 0) return false;
  const hit = (a: string) => globs.some((g) => globMatch(g, a));
  return action === 'allow' ? actors.every(hit) : actors.some(hit);
}

/**
 * A token's scope is checked before any rule: a statement of a kind above its ceiling is denied
 * whatever the rules say. A scope claim that is not understood denies everything (fail closed).
 */
function scopeRefusal(identity: Identity, st: ClassifiedStatement): Decision | null {
  const scope = identityScope(identity);
  if (!scope) return null;
  const claim = String(identity.claims['scope']).slice(0, 60);
  if ('error' in scope) {
    return { action: 'deny', ruleId: null, message: `token scope '${claim}' is not understood (${scope.error}), so nothing is allowed`, kinds: [...st.kinds] };
  }
  const over = outOfScope(scope.ceiling, st.kinds.length ? st.kinds : ['unknown']);
  if (!over) return null;
  const a = /^[aeiou]/.test(over) ? 'an' : 'a';
  return { action: 'deny', ruleId: null, message: `token scope '${claim}' does not allow ${a} ${over} statement`, kinds: [...st.kinds] };
}

function ruleMatches(rule: Rule, identity: Identity, target: string, st: ClassifiedStatement): boolean {
  if (rule.targets && !rule.targets.some((g) => globMatch(g, target))) return false;
  if (rule.kinds && !rule.kinds.includes(mostSevere(st.kinds))) return false;
  if (rule.tables && !tablesMatch(rule.tables, st.tables, rule.action)) return false;
  if (rule.subjects && !rule.subjects.some((g) => globMatch(g, identity.subject))) return false;
  if (rule.builds && !rule.builds.some((g) => identity.build !== null && globMatch(g, identity.build))) return false;
  if (rule.actors && !actorsMatch(rule.actors, identity.actors, rule.action)) return false;
  if (rule.min_depth !== undefined && identity.actors.length < rule.min_depth) return false;
  if (rule.max_depth !== undefined && identity.actors.length > rule.max_depth) return false;
  if (rule.scopes) {
    const scope = identityScope(identity);
    if (!scope || 'error' in scope || !rule.scopes.includes(scope.ceiling)) return false;
  }
  if (rule.claims) {
    for (const [name, glob] of Object.entries(rule.claims)) {
      const value = name === 'sub' ? identity.subject : name === 'build' ? identity.build : identity.claims[name];
      if (!claimMatches(glob, value)) return false;
    }
  }
  return true;
}

function describe(action: Action, ruleId: string | null, kind: Kind, custom?: string): string {
  if (custom) return custom;
  const by = ruleId ? `rule '${ruleId}'` : 'the default policy (no rule matched)';
  const a = /^[aeiou]/.test(kind) ? 'an' : 'a'; // an admin, an unknown
  if (action === 'allow') return `allowed by ${by}`;
  if (action === 'review') return `${a} ${kind} statement needs approval under ${by}`;
  return `${a} ${kind} statement is denied by ${by}`;
}

/** Decide one statement: first matching rule wins, else the default. */
export function decideStatement(policy: PolicyConfig, identity: Identity, target: string, st: ClassifiedStatement): Decision {
  const refused = scopeRefusal(identity, st);
  if (refused) return refused;
  const kind = mostSevere(st.kinds);
  const rule = policy.rules.find((r) => ruleMatches(r, identity, target, st));
  const action = rule ? rule.action : policy.default;
  const message = describe(action, rule?.id ?? null, kind, rule?.message);
  // Why the statement is of its kind, when its text does not show it (a function the catalog says writes).
  const why = st.reason && action !== 'allow' ? `${message}: ${st.reason}` : message;
  const d: Decision = { action, ruleId: rule?.id ?? null, message: why, kinds: [...st.kinds] };
  if (rule?.exempt_masking && action !== 'deny') d.exemptMasking = true;
  return d;
}

/** Decide a whole SQL string: the strictest statement's decision stands for all (one refused ⇒ none runs). */
export function decide(policy: PolicyConfig, identity: Identity, target: string, c: Classification): Decision {
  const statements = c.statements.length ? c.statements : [{ sql: '', kinds: ['read' as Kind], tables: [] }];
  let worst: Decision | null = null;
  let at = 0;
  const kinds = new Set<Kind>();
  // Unmasked only when every statement of a text that parsed is decided by an `exempt_masking` rule.
  let exempt = !c.error && c.statements.length > 0;
  statements.forEach((st, i) => {
    const d = decideStatement(policy, identity, target, st);
    for (const k of d.kinds) kinds.add(k);
    exempt &&= d.exemptMasking === true;
    // The strictest decision stands; between equally strict ones, the more severe statement explains it.
    if (
      !worst ||
      STRICTNESS[d.action] > STRICTNESS[worst.action] ||
      (STRICTNESS[d.action] === STRICTNESS[worst.action] && SEVERITY.get(mostSevere(d.kinds))! > SEVERITY.get(mostSevere(worst.kinds))!)
    ) {
      worst = d;
      at = i;
    }
  });
  const d: Decision = worst!;
  // Of several statements, a refusal says which one it is about (a review shows the whole text to its approvers).
  const sql = statements[at]!.sql;
  const which =
    statements.length > 1 && d.action === 'deny' ? ` — statement ${at + 1} of ${statements.length}: ${sql.length > 80 ? `${sql.slice(0, 77)}…` : sql}` : '';
  const why = c.error && d.action !== 'allow' ? `${d.message} (the statement could not be parsed: ${c.error})${which}` : `${d.message}${which}`;
  const out: Decision = { action: d.action, ruleId: d.ruleId, message: why, kinds: [...kinds] };
  // The statement that explains the decision also says how to ask for approval.
  if (d.action === 'review') out.review = reviewSettings(d.ruleId === null ? undefined : policy.rules.find((r) => r.id === d.ruleId));
  if (exempt && d.action !== 'deny') out.exemptMasking = true;
  return out;
}
