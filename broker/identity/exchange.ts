// OAuth 2.0 Token Exchange (RFC 8693): a pipeline (or an agent it spawned) trades its token for a
// narrower one for a nested agent, signed by the broker's own key. The child keeps the original
// subject and build, is limited to targets and a scope, expires no later than its parent or the
// configured maximum, and names its delegation chain as nested `act` claims. It can never widen.
// Transport-free: http/oauth-token.ts turns a form post into an ExchangeRequest and the result into JSON.
import { KINDS, type Identity } from '../types.js';
import { show } from './claims.js';
import { identityAncestors, identityScope, identityTargets, parseScope, scopeAllows } from './limits.js';
import type { LocalIssuer } from './local-issuer.js';
import { TokenRefusedError, type Verifier } from './verifier.js';

export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
export const TOKEN_TYPE_ID = 'urn:ietf:params:oauth:token-type:id_token';
/** A CI OIDC token is an ID token, a token the broker minted an access token; both are JWTs. */
const SUBJECT_TYPES = [TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS, TOKEN_TYPE_ID];
const ISSUED_TYPES = [TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT];

/** The parameters of a token exchange request (RFC 8693 §2.1), plus `actor` and `expires_in` (ours). */
export interface ExchangeRequest {
  grant_type?: string;
  subject_token?: string;
  subject_token_type?: string;
  actor_token?: string;
  actor_token_type?: string;
  /** Non-standard: the actor's name, for scripts without an actor token (unverified, recorded as given). */
  actor?: string;
  /** Target names (either parameter, repeatable); the broker's own audience means "no narrowing". */
  audience?: string[];
  resource?: string[];
  /** Space-separated statement kinds; the most severe is the ceiling (see limits.ts). */
  scope?: string;
  /** Non-standard: the requested lifetime, in seconds (or 30s, 10m, 1h). */
  expires_in?: string;
  requested_token_type?: string;
}

export type ExchangeErrorCode = 'invalid_request' | 'invalid_grant' | 'invalid_target' | 'invalid_scope' | 'unauthorized_client' | 'unsupported_grant_type';

/** RFC 8693 §2.2.1. */
export interface ExchangeResponse {
  access_token: string;
  issued_token_type: string;
  /** `Bearer` for an access token, `N_A` when a plain JWT was asked for. */
  token_type: 'Bearer' | 'N_A';
  expires_in: number;
  scope?: string;
}

export type ExchangeResult =
  | { ok: true; response: ExchangeResponse; child: { subject: string; build: string | null; actors: string[]; targets: string[] | null; scope: string | null } }
  | { ok: false; error: ExchangeErrorCode; description: string };

export interface ExchangeOptions {
  issuer: LocalIssuer;
  /** Verifies subject and actor tokens: configured issuers and the broker's own. */
  verifier: Verifier;
  /** `aud` of the child (identity.audience): the broker itself. */
  audience: string;
  /** The configured target names. */
  targets: readonly string[];
  /** Lifetime when none is asked for (capped by the parent's and maxTtl), seconds. */
  defaultTtl: number;
  /** identity.exchange.max_ttl (default identity.max_ttl), seconds. */
  maxTtl: number;
  /** identity.exchange.max_depth: the longest delegation chain a child may carry. */
  maxDepth: number;
}

/** Claims of the parent a child never copies: the exchange writes its own. */
const NOT_CARRIED = new Set(['act', 'scope', 'target', 'build', 'subject_issuer', 'jit_ancestors']);
const ACTOR_NAME = /^[^\u0000-\u001f\u007f]{1,200}$/u;

const fail = (error: ExchangeErrorCode, description: string): ExchangeResult => ({ ok: false, error, description });

function parseSeconds(v: string): number | null {
  const m = /^\s*(\d+)\s*(s|m|h)?\s*$/.exec(v);
  if (!m) return null;
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h'];
}

const refusedBecause = (e: unknown) => (e instanceof TokenRefusedError ? e.message.replace(/^token refused: /, '') : 'it could not be verified');

export async function exchangeToken(o: ExchangeOptions, req: ExchangeRequest): Promise<ExchangeResult> {
  if (req.grant_type !== GRANT_TOKEN_EXCHANGE) {
    return fail('unsupported_grant_type', `grant_type must be ${GRANT_TOKEN_EXCHANGE}${req.grant_type ? `, not '${show(req.grant_type)}'` : ''}`);
  }
  if (!req.subject_token) return fail('invalid_request', 'subject_token is missing');
  if (!req.subject_token_type || !SUBJECT_TYPES.includes(req.subject_token_type)) {
    return fail('invalid_request', `subject_token_type must be one of ${SUBJECT_TYPES.join(', ')}`);
  }
  if (req.actor_token && (!req.actor_token_type || !SUBJECT_TYPES.includes(req.actor_token_type))) {
    return fail('invalid_request', `actor_token_type must be given with actor_token, one of ${SUBJECT_TYPES.join(', ')}`);
  }
  if (!req.actor_token && req.actor_token_type) return fail('invalid_request', 'actor_token_type was given without actor_token');
  const issuedType = req.requested_token_type ?? TOKEN_TYPE_ACCESS;
  if (!ISSUED_TYPES.includes(issuedType)) return fail('invalid_request', `requested_token_type must be one of ${ISSUED_TYPES.join(', ')}`);

  let parent: Identity;
  try {
    parent = await o.verifier.verify(req.subject_token);
  } catch (e) {
    return fail('invalid_grant', `subject_token refused: ${refusedBecause(e)}`);
  }

  // Who the child is for: a verified actor token's subject, or a plain name (scripts). One of them.
  let actor: { sub: string; iss?: string };
  if (req.actor_token) {
    let a: Identity;
    try {
      a = await o.verifier.verify(req.actor_token);
    } catch (e) {
      return fail('invalid_request', `actor_token refused: ${refusedBecause(e)}`);
    }
    if (req.actor && req.actor !== a.subject) {
      return fail('invalid_request', `actor '${show(req.actor)}' differs from the actor_token's subject '${show(a.subject)}'`);
    }
    actor = { sub: a.subject, iss: a.issuer };
  } else if (req.actor) {
    if (!ACTOR_NAME.test(req.actor)) return fail('invalid_request', 'actor must be 1 to 200 printable characters');
    actor = { sub: req.actor };
  } else {
    return fail('invalid_request', 'name who the token is for: an actor_token (verified) or an actor name; every exchange adds one to the delegation chain');
  }

  const depth = parent.actors.length + 1;
  if (depth > o.maxDepth) {
    return fail(
      'invalid_request',
      `delegation depth exceeded: the subject_token is already ${parent.actors.length} deep (${parent.actors.join(' <- ')}), and identity.exchange.max_depth is ${o.maxDepth}`,
    );
  }

  // Targets: a subset of the parent's (or of the configured ones when the parent is not limited).
  const parentTargets = identityTargets(parent);
  if (parentTargets?.length === 0) return fail('invalid_grant', 'subject_token refused: its target claim is malformed');
  const asked = [...new Set([...(req.audience ?? []), ...(req.resource ?? [])].flatMap((t) => t.split(/\s+/)).filter((t) => t && t !== o.audience))];
  let targets: string[] | null = parentTargets;
  if (asked.length) {
    const unknown = asked.find((t) => !o.targets.includes(t));
    if (unknown !== undefined) return fail('invalid_target', `'${show(unknown)}' is not a target of this broker`);
    const wider = parentTargets ? asked.find((t) => !parentTargets.includes(t)) : undefined;
    if (wider !== undefined) {
      return fail(
        'invalid_target',
        `the subject_token is limited to target${parentTargets!.length > 1 ? 's' : ''} ${parentTargets!.map((t) => `'${t}'`).join(', ')}; a child cannot get '${wider}'`,
      );
    }
    targets = asked;
  }

  // Scope: a ceiling no higher than the parent's.
  const parentScope = identityScope(parent);
  if (parentScope && 'error' in parentScope) return fail('invalid_grant', `subject_token refused: its scope claim is not understood (${parentScope.error})`);
  let scope = parentScope?.ceiling ?? null;
  if (req.scope !== undefined) {
    const s = parseScope(req.scope);
    if ('error' in s) return fail('invalid_scope', `${s.error}`);
    if (parentScope && !scopeAllows(parentScope.ceiling, s.ceiling)) {
      return fail(
        'invalid_scope',
        `the subject_token's scope is '${parentScope.ceiling}'; a child cannot get '${s.ceiling}' (scopes run ${KINDS.join(' < ')})`,
      );
    }
    scope = s.ceiling;
  }

  // Lifetime: within the parent's remaining life and the configured maximum.
  const now = Math.floor(Date.now() / 1000);
  const parentExp = Math.floor(parent.expiresAt.getTime() / 1000);
  const left = parentExp - now;
  if (left <= 0) return fail('invalid_grant', `subject_token refused: expired ${-left}s ago; request a new token`);
  let ttl = Math.min(o.defaultTtl, o.maxTtl, left);
  if (req.expires_in !== undefined) {
    const asked = parseSeconds(req.expires_in);
    if (asked === null || asked <= 0) return fail('invalid_request', `expires_in must be a positive number of seconds, not '${show(req.expires_in)}'`);
    if (asked > o.maxTtl) return fail('invalid_request', `expires_in ${asked}s is longer than identity.exchange.max_ttl (${o.maxTtl}s)`);
    if (asked > left) return fail('invalid_request', `expires_in ${asked}s would outlive the subject_token, which expires in ${left}s`);
    ttl = asked;
  }
  ttl = Math.max(1, Math.floor(ttl));

  const carried = Object.fromEntries(Object.entries(parent.claims).filter(([k]) => !NOT_CARRIED.has(k)));
  const parentAct = parent.claims['act'];
  const act = { ...actor, ...(parentAct !== undefined ? { act: parentAct } : {}) };
  const claims: Record<string, unknown> = {
    ...carried,
    act,
    subject_issuer: typeof parent.claims['subject_issuer'] === 'string' ? parent.claims['subject_issuer'] : parent.issuer,
    jit_ancestors: [...(parent.tokenId ? [parent.tokenId] : []), ...identityAncestors(parent)],
    ...(scope ? { scope } : {}),
    ...(targets ? { target: targets.length === 1 ? targets[0] : targets } : {}),
  };
  const token = await o.issuer.sign({
    subject: parent.subject,
    build: parent.build ?? undefined,
    audience: o.audience,
    ttlSeconds: ttl,
    notAfter: parentExp,
    claims,
  });
  const expiresIn = Math.min(ttl, parentExp - now);
  return {
    ok: true,
    response: {
      access_token: token,
      issued_token_type: issuedType,
      token_type: issuedType === TOKEN_TYPE_ACCESS ? 'Bearer' : 'N_A',
      expires_in: expiresIn,
      ...(scope ? { scope } : {}),
    },
    child: { subject: parent.subject, build: parent.build, actors: [actor.sub, ...parent.actors], targets, scope },
  };
}
