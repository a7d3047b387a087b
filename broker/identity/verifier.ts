// Verifies client tokens (the database password) against trusted issuers and turns them into an Identity.
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Identity } from '../types.js';
import { KEPT_CLAIMS, LOCAL_CLAIMS, actorChain, claimMatches, deriveBuild, globToRegExp, show, templateClaims } from './claims.js';
import type { LocalIssuer } from './local-issuer.js';

export interface IssuerConfig {
  issuer: string;
  audience: string | string[];
  jwks_uri?: string;
  jwks_file?: string;
  /** Claim name → glob (`*` any run of characters, `/` included; `?` one character). */
  claims?: Record<string, string>;
  /** Build id template, e.g. `{repository}/{run_id}/{run_attempt}`. */
  build?: string;
  algorithms?: string[];
}

export type RefusalCheck =
  | 'malformed'
  | 'algorithm'
  | 'issuer'
  | 'signature'
  | 'unknown_key'
  | 'expired'
  | 'not_yet_valid'
  | 'audience'
  | 'claims'
  | 'jwks_unavailable'
  | 'revoked'
  | 'used';

export class TokenRefusedError extends Error {
  override readonly name = 'TokenRefusedError';
  constructor(
    readonly check: RefusalCheck,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface VerifierOptions {
  issuers: IssuerConfig[];
  local?: { issuer: LocalIssuer; audience: string };
  /** Tolerance for exp/nbf, in seconds (default 30). */
  clockSkewSeconds?: number;
  /**
   * Whether the token is revoked: true or a description of the revocation (shown to the client) refuses
   * it. `ancestors`: the `jti`s of the tokens a broker-minted token was exchanged from, nearest first.
   */
  isRevoked?: (id: { jti: string | null; build: string | null; ancestors: string[] }) => boolean | string | Promise<boolean | string>;
}

export interface Verifier {
  verify(token: string): Promise<Identity>;
}

export const ASYMMETRIC_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

const DISCOVERY_RETRY_MS = 10_000;
const FETCH_TIMEOUT_MS = 5_000;

interface Trusted {
  issuer: string;
  audience: string | string[];
  algorithms: string[];
  constraints: { claim: string; glob: string; re: RegExp }[];
  build: string | undefined;
  kept: string[];
  keys: () => Promise<JWTVerifyGetKey>;
}

/** A failure to obtain the issuer's keys (as opposed to the keys not holding the token's kid). */
class JwksUnavailable extends Error {}

export function createVerifier(opts: VerifierOptions): Verifier {
  const skew = opts.clockSkewSeconds ?? 30;
  const trusted = new Map<string, Trusted>();
  for (const cfg of opts.issuers) {
    if (trusted.has(cfg.issuer)) throw new Error(`identity: issuer ${cfg.issuer} is configured twice`);
    trusted.set(cfg.issuer, prepare(cfg));
  }
  if (opts.local) {
    const { issuer: local, audience } = opts.local;
    if (trusted.has(local.issuer)) throw new Error(`identity: ${local.issuer} is both the local issuer and a configured one`);
    trusted.set(local.issuer, {
      issuer: local.issuer,
      audience,
      algorithms: ['ES256'],
      constraints: [],
      build: undefined,
      kept: [...KEPT_CLAIMS, ...LOCAL_CLAIMS],
      keys: () => Promise.resolve(local.keySet),
    });
  }

  async function verify(token: string): Promise<Identity> {
    if (typeof token !== 'string' || token.split('.').length !== 3) {
      throw new TokenRefusedError('malformed', 'token refused: malformed: not a signed JWT (expected header.payload.signature)');
    }
    let alg: unknown;
    let kid: unknown;
    let iss: unknown;
    try {
      ({ alg, kid } = decodeProtectedHeader(token));
      iss = decodeJwt(token).iss;
    } catch {
      throw new TokenRefusedError('malformed', 'token refused: malformed: header or payload is not base64url-encoded JSON');
    }
    if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.includes(alg)) {
      throw new TokenRefusedError(
        'algorithm',
        `token refused: algorithm '${show(alg)}' is not allowed; only asymmetric signatures are accepted (${ASYMMETRIC_ALGORITHMS.join(', ')})`,
      );
    }
    if (typeof iss !== 'string') throw new TokenRefusedError('issuer', 'token refused: issuer missing (the token has no iss claim)');
    const t = trusted.get(iss);
    if (!t) throw new TokenRefusedError('issuer', `token refused: issuer '${show(iss)}' is not trusted`);
    if (!t.algorithms.includes(alg)) {
      throw new TokenRefusedError(
        'algorithm',
        `token refused: algorithm '${alg}' is not accepted by issuer ${t.issuer} (accepted: ${t.algorithms.join(', ')})`,
      );
    }

    let payload: JWTPayload;
    try {
      const keys = await t.keys();
      ({ payload } = await jwtVerify(token, keys, {
        issuer: t.issuer,
        audience: t.audience,
        algorithms: t.algorithms,
        clockTolerance: skew,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      throw refusal(err, t, typeof kid === 'string' ? kid : undefined);
    }

    const sub = payload.sub;
    if (typeof sub !== 'string' || sub === '') throw new TokenRefusedError('malformed', 'token refused: malformed: sub claim is empty');
    for (const c of t.constraints) {
      const value = payload[c.claim];
      if (!claimMatches(value, c.re)) {
        const what = value === undefined ? `is missing (must match '${c.glob}')` : `('${show(value)}') does not match '${c.glob}'`;
        throw new TokenRefusedError('claims', `token refused: claims constraint of issuer ${t.issuer} failed: claim '${c.claim}' ${what}`);
      }
    }
    const actors = actorChain(payload.act);
    if (!actors) throw new TokenRefusedError('malformed', 'token refused: malformed: every act claim must be an object with a non-empty sub (at most 16 deep)');
    const build = deriveBuild(t.build, payload);
    const jti = typeof payload.jti === 'string' ? payload.jti : null;

    const ancestors =
      t.kept.includes('jit_ancestors') && Array.isArray(payload['jit_ancestors'])
        ? payload['jit_ancestors'].filter((a): a is string => typeof a === 'string' && a !== '')
        : [];
    if (opts.isRevoked) {
      let revoked: boolean | string;
      try {
        revoked = await opts.isRevoked({ jti, build, ancestors });
      } catch (err) {
        throw new TokenRefusedError('revoked', 'token refused: the revoked-token check could not be made; failing closed', { cause: err });
      }
      if (typeof revoked === 'string') throw new TokenRefusedError('revoked', `token refused: revoked: ${revoked}`);
      if (revoked) {
        throw new TokenRefusedError('revoked', `token refused: revoked (token id ${jti ?? 'none'}, build ${build ?? 'none'})`);
      }
    }

    const claims: Record<string, unknown> = {};
    for (const name of t.kept) if (Object.hasOwn(payload, name)) claims[name] = payload[name];
    if (payload.act !== undefined) claims['act'] = payload.act;
    return {
      subject: sub,
      issuer: t.issuer,
      build,
      claims,
      actors,
      tokenId: jti,
      expiresAt: new Date((payload.exp ?? 0) * 1000),
    };
  }

  return { verify };
}

function prepare(cfg: IssuerConfig): Trusted {
  const where = `identity: issuer ${cfg.issuer}`;
  if (!cfg.issuer) throw new Error('identity: an issuer has an empty issuer url');
  if (Array.isArray(cfg.audience) ? cfg.audience.length === 0 : !cfg.audience) throw new Error(`${where}: audience is required`);
  const algorithms = cfg.algorithms ?? [...ASYMMETRIC_ALGORITHMS];
  const bad = algorithms.filter((a) => !ASYMMETRIC_ALGORITHMS.includes(a));
  if (bad.length || algorithms.length === 0) throw new Error(`${where}: algorithms must be asymmetric (refused: ${bad.join(', ') || 'empty list'})`);
  if (cfg.jwks_file && cfg.jwks_uri) throw new Error(`${where}: set jwks_file or jwks_uri, not both`);
  const constraints = Object.entries(cfg.claims ?? {}).map(([claim, glob]) => ({ claim, glob, re: globToRegExp(glob) }));
  // The broker's own claims (scope, target, ...) are never taken from another issuer's token.
  const kept = [...new Set([...KEPT_CLAIMS, ...constraints.map((c) => c.claim), ...templateClaims(cfg.build)])].filter((c) => !LOCAL_CLAIMS.includes(c));
  let keys: () => Promise<JWTVerifyGetKey>;
  if (cfg.jwks_file) {
    const file = cfg.jwks_file;
    keys = cachedOnSuccess(async () => {
      try {
        return createLocalJWKSet(JSON.parse(await readFile(file, 'utf8')));
      } catch (err) {
        throw new JwksUnavailable(`JWKS file ${file} could not be read: ${describe(err)}`, { cause: err });
      }
    }, 0);
  } else if (cfg.jwks_uri) {
    const remote = failClosed(createRemoteJWKSet(new URL(cfg.jwks_uri), { timeoutDuration: FETCH_TIMEOUT_MS }));
    keys = () => Promise.resolve(remote);
  } else {
    keys = cachedOnSuccess(() => discover(cfg.issuer), DISCOVERY_RETRY_MS);
  }
  return { issuer: cfg.issuer, audience: cfg.audience, algorithms, constraints, build: cfg.build, kept, keys };
}

/** Memoises a successful load; a failure is remembered for retryAfterMs, then the load is tried again. */
function cachedOnSuccess<T>(load: () => Promise<T>, retryAfterMs: number): () => Promise<T> {
  let value: Promise<T> | undefined;
  let failure: { error: unknown; at: number } | undefined;
  return () => {
    if (value) return value;
    if (failure && Date.now() - failure.at < retryAfterMs) return Promise.reject(failure.error);
    const p = load();
    value = p;
    p.catch((error: unknown) => {
      if (value === p) value = undefined;
      failure = { error, at: Date.now() };
    });
    return p;
  };
}

/** OIDC discovery: `<issuer>/.well-known/openid-configuration` → jwks_uri → a cached remote JWKS. */
async function discover(issuer: string): Promise<JWTVerifyGetKey> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let doc: unknown;
  try {
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    doc = await res.json();
  } catch (err) {
    throw new JwksUnavailable(`OIDC discovery at ${url} failed: ${describe(err)}`, { cause: err });
  }
  const { issuer: docIssuer, jwks_uri: jwksUri } = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  if (typeof docIssuer !== 'string' || docIssuer.replace(/\/+$/, '') !== issuer.replace(/\/+$/, '')) {
    throw new JwksUnavailable(`OIDC discovery at ${url} names issuer '${show(docIssuer)}', not ${issuer}`);
  }
  if (typeof jwksUri !== 'string' || !URL.canParse(jwksUri)) throw new JwksUnavailable(`OIDC discovery at ${url} has no valid jwks_uri`);
  return failClosed(createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: FETCH_TIMEOUT_MS }));
}

/** Passes "no such key" through; any other failure of the remote set means its keys are unavailable. */
function failClosed(remote: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err;
      throw new JwksUnavailable(describe(err), { cause: err });
    }
  };
}

function refusal(err: unknown, t: Trusted, kid: string | undefined): TokenRefusedError {
  const key = kid === undefined ? 'the token names no kid' : `kid '${show(kid)}'`;
  const now = Math.floor(Date.now() / 1000);
  if (err instanceof TokenRefusedError) return err;
  if (err instanceof JwksUnavailable || err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) {
    return new TokenRefusedError(
      'jwks_unavailable',
      `token refused: jwks unavailable for issuer ${t.issuer} (${err.message}); failing closed, try again later`,
      { cause: err },
    );
  }
  if (err instanceof errors.JWTExpired) {
    const exp = err.payload['exp'];
    const when = typeof exp === 'number' ? ` ${now - exp}s ago (exp ${iso(exp)})` : '';
    return new TokenRefusedError('expired', `token refused: expired${when}; request a new token`);
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    const p = err.payload;
    switch (err.claim) {
      case 'nbf': {
        const nbf = typeof p['nbf'] === 'number' ? p['nbf'] : now;
        return new TokenRefusedError('not_yet_valid', `token refused: not yet valid for another ${nbf - now}s (nbf ${iso(nbf)})`);
      }
      case 'aud':
        return new TokenRefusedError(
          'audience',
          `token refused: audience ${p['aud'] === undefined ? '(none)' : `'${show(p['aud'])}'`} is not accepted by issuer ${t.issuer} (expected ${show(t.audience)})`,
        );
      case 'iss':
        return new TokenRefusedError('issuer', `token refused: issuer '${show(p['iss'])}' is not trusted`);
      case 'exp':
        return new TokenRefusedError(
          'malformed',
          err.reason === 'missing'
            ? 'token refused: malformed: the token has no exp claim; only expiring tokens are accepted'
            : 'token refused: malformed: exp claim is not a number',
        );
      default:
        return new TokenRefusedError('malformed', `token refused: malformed: claim '${err.claim}' is ${err.reason === 'missing' ? 'missing' : 'invalid'}`);
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return new TokenRefusedError('algorithm', `token refused: algorithm not accepted by issuer ${t.issuer}`);
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return new TokenRefusedError('unknown_key', `token refused: unknown key: ${key}, and no matching key is in the JWKS of issuer ${t.issuer}`);
  }
  if (err instanceof errors.JWKSMultipleMatchingKeys) {
    return new TokenRefusedError('unknown_key', `token refused: unknown key: ${key}, and the JWKS of issuer ${t.issuer} holds several candidates`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenRefusedError('signature', `token refused: signature does not verify with ${key} of issuer ${t.issuer}`);
  }
  const why = err instanceof errors.JOSEError ? err.code : 'unexpected error';
  return new TokenRefusedError('malformed', `token refused: malformed: the token could not be verified (${why})`, { cause: err });
}

function iso(seconds: number): string {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString();
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return show(err);
  const cause: unknown = err.cause;
  const detail = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : undefined;
  return detail ? `${err.message}: ${detail}` : err.message;
}
