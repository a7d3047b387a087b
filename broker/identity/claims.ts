// Pure helpers that turn verified claims into Identity fields: kept claims, build id, actor chain, globs.
import type { JWTPayload } from 'jose';

/** Claims copied into Identity.claims (besides constraint/template claims and `act`). */
export const KEPT_CLAIMS: readonly string[] = [
  // GitHub Actions
  'repository',
  'repository_owner',
  'run_id',
  'run_attempt',
  'workflow',
  'ref',
  'sha',
  'actor',
  'job_workflow_ref',
  'environment',
  // GitLab CI
  'project_path',
  'namespace_path',
  'pipeline_id',
  'job_id',
  'user_login',
  'user_email',
  // the broker's own tokens (and a remote token's `build` claim, when it has one)
  'build',
  // who triggered it, when the issuer says: approvals refuse a requester approving their own statement
  'email',
];

/**
 * Claims only the broker's own tokens carry meaningfully, kept for them alone: the limits a token
 * exchange wrote (`scope`, `target`), the issuer of the original subject, and the `jti`s of the tokens
 * it was exchanged from (revoking one revokes its descendants). Another issuer's `scope` means that
 * issuer's OAuth scopes, not statement kinds, so it is neither kept nor enforced.
 */
export const LOCAL_CLAIMS: readonly string[] = ['scope', 'target', 'subject_issuer', 'jit_ancestors'];

export const MAX_ACT_DEPTH = 16;

const PLACEHOLDER = /\{([^{}]+)\}/g;

/** Claim names a build template refers to: `{repository}/{run_id}` → ['repository', 'run_id']. */
export function templateClaims(template: string | undefined): string[] {
  return template ? [...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '') : [];
}

/**
 * RFC 8693 delegation chain, outermost actor first: `{act:{sub:'agent-b', act:{sub:'bot-a'}}}` →
 * ['agent-b', 'bot-a'] (the current actor, then whoever delegated to it). Null when an `act` level
 * is not an object with a non-empty `sub`, or the chain is deeper than MAX_ACT_DEPTH.
 */
export function actorChain(act: unknown): string[] | null {
  const actors: string[] = [];
  let cur = act;
  while (cur !== undefined) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return null;
    const level = cur as Record<string, unknown>;
    const sub = level['sub'];
    if (typeof sub !== 'string' || sub === '' || actors.length === MAX_ACT_DEPTH) return null;
    actors.push(sub);
    cur = level['act'];
  }
  return actors;
}

/**
 * Build id: the issuer's template when every placeholder has a scalar claim; else the `build` claim;
 * else `repository/run_id/run_attempt` (GitHub) or `project_path/pipeline_id` (GitLab); else null.
 */
export function deriveBuild(template: string | undefined, p: JWTPayload): string | null {
  if (template) {
    let missing = false;
    const out = template.replace(PLACEHOLDER, (_, name: string) => {
      const v = scalar(p[name]);
      if (v === null) missing = true;
      return v ?? '';
    });
    if (!missing) return out;
  }
  const [build, repo, runId, attempt, project, pipeline] = ['build', 'repository', 'run_id', 'run_attempt', 'project_path', 'pipeline_id'].map((n) =>
    scalar(p[n]),
  );
  if (build) return build;
  if (repo && runId) return attempt ? `${repo}/${runId}/${attempt}` : `${repo}/${runId}`;
  if (project && pipeline) return `${project}/${pipeline}`;
  return null;
}

/** A claim value as text for templates and globs: strings (non-empty), numbers, booleans. */
export function scalar(v: unknown): string | null {
  if (typeof v === 'string') return v === '' ? null : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

/** `*` matches any run of characters (`/` included), `?` exactly one; everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) re += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
  return new RegExp(`^${re}$`, 'su');
}

/** Whether a claim satisfies a glob; an array claim does when any of its elements does. */
export function claimMatches(value: unknown, re: RegExp): boolean {
  const values = Array.isArray(value) ? value.map(scalar) : [scalar(value)];
  return values.some((v) => v !== null && re.test(v));
}

/** A value for a message: at most 80 printable characters. */
export function show(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}
