// Policy as data: what a policy file or a stored version holds, validated by the config's own schema
// (`rules:`/`default:` of jit.yaml); the diff between two versions by rule id; a one-line summary per rule.
// `loadPolicyFile` is the one way a file becomes a policy (`jit policy apply`, its --dry-run, the bootstrap).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError, formatPath, interpolate, policyDocument, ruleProblems, type RuleConfig } from '../config.js';
import { canonicalJson } from '../store/policy-hash.js';
import type { PolicyDocument } from '../store/types.js';
import type { Action } from '../types.js';
import type { PolicyConfig } from './decide.js';

/** A validated policy: the rules as decide() takes them, and as the store keeps them (`PolicyDocument`). */
export interface ValidPolicy extends PolicyConfig {
  rules: RuleConfig[];
  default: Action;
}

/**
 * Validates a policy document (a stored version, a POST /api/policy body, a file's `rules:`/`default:`) with the
 * config's schema and its rule checks; `targets`: the target names rules may name (null: not checked). Throws a
 * ConfigError naming each problem.
 */
export function parsePolicyDocument(doc: unknown, targets: readonly string[] | null, where: string | null = null): ValidPolicy {
  const r = policyDocument.safeParse(doc);
  if (!r.success)
    throw new ConfigError(
      where,
      r.error.issues.map((i) => `${formatPath(i.path) || '(top level)'}: ${i.message}`),
    );
  const problems = ruleProblems(r.data.rules, targets);
  if (problems.length)
    throw new ConfigError(
      where,
      problems.map((p) => `${formatPath(p.path)}: ${p.message}`),
    );
  return { rules: r.data.rules, default: r.data.default };
}

/** A validated policy as the store keeps it (plain JSON: durations already in seconds). */
export function toDocument(p: PolicyConfig): PolicyDocument {
  return JSON.parse(JSON.stringify({ rules: p.rules, default: p.default })) as PolicyDocument;
}

/**
 * Reads and validates a policy file: a YAML with `rules:` and optionally `default:` (a whole jit.yaml works: the
 * rest is ignored). `${VAR}` is interpolated inside the rules as in the config. Rule targets are checked against
 * the file's own `targets:` when it has some, else against `targets` (null: not checked). Throws a ConfigError.
 */
export function loadPolicyFile(path: string, targets: readonly string[] | null = null, env: NodeJS.ProcessEnv = process.env): ValidPolicy {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [`cannot read the file: ${(e as Error).message}`]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length)
    throw new ConfigError(
      file,
      doc.errors.map((e) => e.message),
    );
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(file, ['(top level): expected a mapping with rules: and default:']);
  const top = raw as Record<string, unknown>;
  if (!('rules' in top) && !('default' in top)) throw new ConfigError(file, ['(top level): no rules: and no default: in the file']);
  const missing: string[] = [];
  const picked: unknown = JSON.parse(
    JSON.stringify({ rules: top['rules'], default: top['default'] }, (_k, v: unknown) => (typeof v === 'string' ? interpolate(v, env, missing) : v)),
  );
  if (missing.length)
    throw new ConfigError(
      file,
      [...new Set(missing)].map((n) => `environment variable ${n} is not set (use \${${n}:-default} for a fallback)`),
    );
  const own = top['targets'];
  const names = own && typeof own === 'object' && !Array.isArray(own) ? Object.keys(own) : targets;
  return parsePolicyDocument(picked, names, file);
}

/** Whether two policies are the same rules (canonical JSON: key order does not matter). */
export function samePolicy(a: PolicyConfig | PolicyDocument, b: PolicyConfig | PolicyDocument): boolean {
  return canonicalJson(toDocument(a as PolicyConfig)) === canonicalJson(toDocument(b as PolicyConfig));
}

export interface PolicyDiff {
  added: string[];
  removed: string[];
  /** Rules whose settings changed (by id). */
  changed: string[];
  /** The same rules in another order (first match wins: order matters). */
  reordered: boolean;
  default: { from: string; to: string } | null;
}

type Ruled = { id: string };
const ruleList = (d: PolicyConfig | PolicyDocument): Ruled[] => d.rules as Ruled[];

/** What changes from `a` to `b`: rules added, removed, changed (by id), their order, the default. */
export function diffPolicies(a: PolicyConfig | PolicyDocument, b: PolicyConfig | PolicyDocument): PolicyDiff {
  const before = new Map(ruleList(a).map((r) => [r.id, r]));
  const after = new Map(ruleList(b).map((r) => [r.id, r]));
  const added = [...after.keys()].filter((id) => !before.has(id));
  const removed = [...before.keys()].filter((id) => !after.has(id));
  const changed = [...after.keys()].filter((id) => before.has(id) && canonicalJson(before.get(id)) !== canonicalJson(after.get(id)));
  const kept = (m: Map<string, Ruled>, other: Map<string, Ruled>) => [...m.keys()].filter((id) => other.has(id)).join('\n');
  return {
    added,
    removed,
    changed,
    reordered: kept(before, after) !== kept(after, before),
    default: a.default !== b.default ? { from: a.default, to: b.default } : null,
  };
}

export function isEmptyDiff(d: PolicyDiff): boolean {
  return !d.added.length && !d.removed.length && !d.changed.length && !d.reordered && !d.default;
}

/** The diff for people, one line per change (`+ rule x: …`, `- rule y`, `~ rule z: …`, `default: deny → review`). */
export function formatDiff(d: PolicyDiff, b: PolicyConfig | PolicyDocument): string {
  const byId = new Map(ruleList(b).map((r) => [r.id, r as unknown as RuleConfig]));
  const lines = [
    ...d.added.map((id) => `+ rule ${id}: ${summarizeRule(byId.get(id)!)}`),
    ...d.removed.map((id) => `- rule ${id}`),
    ...d.changed.map((id) => `~ rule ${id}: ${summarizeRule(byId.get(id)!)}`),
    ...(d.reordered ? ['~ rule order changed (the first matching rule decides)'] : []),
    ...(d.default ? [`~ default: ${d.default.from} → ${d.default.to}`] : []),
  ];
  return lines.length ? `${lines.join('\n')}\n` : 'no change\n';
}

/** One rule for people: `deny read on tables orders,users for builds ci-* ("message")`. */
export function summarizeRule(r: RuleConfig): string {
  const parts: string[] = [r.action];
  parts.push(r.kinds?.length ? r.kinds.join(',') : 'any kind');
  if (r.targets) parts.push(`on ${r.targets.join(',')}`);
  if (r.tables) parts.push(`tables ${r.tables.join(',')}`);
  if (r.subjects) parts.push(`subjects ${r.subjects.join(',')}`);
  if (r.builds) parts.push(`builds ${r.builds.join(',')}`);
  if (r.actors) parts.push(`actors ${r.actors.join(',')}`);
  if (r.claims)
    parts.push(
      `claims ${Object.entries(r.claims)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')}`,
    );
  if (r.scopes) parts.push(`scopes ${r.scopes.join(',')}`);
  if (r.min_depth !== undefined || r.max_depth !== undefined) parts.push(`depth ${r.min_depth ?? 0}..${r.max_depth ?? '∞'}`);
  if (r.action === 'review') {
    if (r.approvers?.length) parts.push(`approvers ${r.approvers.join(',')}`);
    if (r.min_approvals && r.min_approvals > 1) parts.push(`${r.min_approvals} approvals`);
    if (r.scope === 'session') parts.push('scope session');
  }
  if (r.exempt_masking) parts.push('unmasked');
  return parts.join(' ');
}
