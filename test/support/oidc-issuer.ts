// A local OIDC issuer over HTTP, for tokens shaped exactly like GitHub Actions' and GitLab CI's ID
// tokens: discovery at <issuer>/.well-known/openid-configuration, a JWKS, RS256 keys that can be
// rotated, and a count of requests per path (the broker must not hammer the JWKS endpoint).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

export interface OidcIssuer {
  /** `iss` of its tokens: http://127.0.0.1:<port>/<name>. */
  url: string;
  /** Requests per path, e.g. hits['/github/jwks']. */
  hits: Record<string, number>;
  /** The kid tokens are signed with now. */
  kid: string;
  /** Adds a new key, signs with it from now on, and (unless keepOld) drops the old ones from the JWKS. */
  rotate(opts?: { keepOld?: boolean }): Promise<string>;
  /** Signs claims (iss, iat, nbf, exp, jti filled in unless given) with the current key, or a given one. */
  sign(claims: Record<string, unknown>, opts?: { kid?: string; key?: CryptoKey; ttlSeconds?: number }): Promise<string>;
  close(): Promise<void>;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID().replace(/-/g, '').slice(0, 20);
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** One HTTP server hosting several issuers, one per path prefix (`/github`, `/gitlab`). */
export async function startOidcIssuers(names: string[]): Promise<{ issuers: Record<string, OidcIssuer>; close(): Promise<void> }> {
  const hits: Record<string, number> = {};
  const state = new Map<string, { keys: Key[]; current: Key }>();
  for (const n of names) {
    const k = await newKey();
    state.set(n, { keys: [k], current: k });
  }
  let base = '';
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    hits[path] = (hits[path] ?? 0) + 1;
    const [, name, ...rest] = path.split('/');
    const s = name ? state.get(name) : undefined;
    const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (!s) return json(404, { error: 'no such issuer' });
    const tail = rest.join('/');
    if (tail === '.well-known/openid-configuration') {
      return json(200, {
        issuer: `${base}/${name}`,
        jwks_uri: `${base}/${name}/.well-known/jwks`,
        subject_types_supported: ['public', 'pairwise'],
        response_types_supported: ['id_token'],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid'],
      });
    }
    if (tail === '.well-known/jwks') return json(200, { keys: s.keys.map((k) => k.jwk) });
    return json(404, { error: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const issuers: Record<string, OidcIssuer> = {};
  for (const name of names) {
    const s = state.get(name)!;
    const url = `${base}/${name}`;
    issuers[name] = {
      url,
      hits,
      get kid() {
        return s.current.kid;
      },
      async rotate(opts = {}) {
        const k = await newKey();
        s.keys = opts.keepOld ? [...s.keys, k] : [k];
        s.current = k;
        return k.kid;
      },
      async sign(claims, opts = {}) {
        const now = Math.floor(Date.now() / 1000);
        const payload = { jti: randomUUID(), iss: url, iat: now, nbf: now - 5, exp: now + (opts.ttlSeconds ?? 300), ...claims };
        return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: opts.kid ?? s.current.kid }).sign(opts.key ?? s.current.privateKey);
      },
      close: () => Promise.resolve(),
    };
  }
  return {
    issuers,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * The claims of a GitHub Actions ID token, as GitHub documents them ("About security hardening with
 * OpenID Connect"), for a push to main of acme/app in the `prod` environment.
 */
export function githubClaims(o: {
  runId: string;
  runAttempt?: string;
  repository?: string;
  environment?: string | null;
  aud?: string;
}): Record<string, unknown> {
  const repository = o.repository ?? 'acme/app';
  const [owner] = repository.split('/');
  const env = o.environment === undefined ? 'prod' : o.environment;
  return {
    sub: env ? `repo:${repository}:environment:${env}` : `repo:${repository}:ref:refs/heads/main`,
    aud: o.aud ?? 'jit-broker',
    ref: 'refs/heads/main',
    sha: 'd6f7c2e1a9b04c3e8f5a2b1c0d9e8f7a6b5c4d3e',
    repository,
    repository_owner: owner,
    repository_owner_id: '65',
    repository_id: '74',
    repository_visibility: 'private',
    run_id: o.runId,
    run_number: '10',
    run_attempt: o.runAttempt ?? '1',
    runner_environment: 'github-hosted',
    actor: 'octocat',
    actor_id: '12',
    workflow: 'nightly',
    workflow_ref: `${repository}/.github/workflows/nightly.yml@refs/heads/main`,
    workflow_sha: 'd6f7c2e1a9b04c3e8f5a2b1c0d9e8f7a6b5c4d3e',
    head_ref: '',
    base_ref: '',
    event_name: 'schedule',
    ref_type: 'branch',
    ref_protected: 'true',
    job_workflow_ref: `${repository}/.github/workflows/nightly.yml@refs/heads/main`,
    job_workflow_sha: 'd6f7c2e1a9b04c3e8f5a2b1c0d9e8f7a6b5c4d3e',
    ...(env ? { environment: env, environment_node_id: 'EN_kwDOA0000000000' } : {}),
  };
}

/** The claims of a GitLab CI ID token (`id_tokens:`), as GitLab documents them, for a pipeline on main. */
export function gitlabClaims(o: { pipelineId: string; projectPath?: string; aud?: string }): Record<string, unknown> {
  const projectPath = o.projectPath ?? 'acme/platform/app';
  const namespace = projectPath.split('/').slice(0, -1).join('/');
  return {
    sub: `project_path:${projectPath}:ref_type:branch:ref:main`,
    aud: o.aud ?? 'jit-broker',
    namespace_id: '72',
    namespace_path: namespace,
    project_id: '20',
    project_path: projectPath,
    user_id: '1',
    user_login: 'sample-user',
    user_email: 'sample-user@example.com',
    user_access_level: 'maintainer',
    user_identities: [{ provider: 'github', extern_uid: '2435223452345' }],
    pipeline_id: o.pipelineId,
    pipeline_source: 'schedule',
    job_id: '302',
    ref: 'main',
    ref_type: 'branch',
    ref_path: 'refs/heads/main',
    ref_protected: 'true',
    groups_direct: [namespace],
    environment: 'production',
    environment_protected: 'true',
    deployment_tier: 'production',
    environment_action: 'start',
    runner_id: 1,
    runner_environment: 'gitlab-hosted',
    sha: '714a629c0b401fdce83e847fc9589983fc6f46bc',
    project_visibility: 'private',
    ci_config_ref_uri: `gitlab.example.com/${projectPath}//.gitlab-ci.yml@refs/heads/main`,
    ci_config_sha: '714a629c0b401fdce83e847fc9589983fc6f46bc',
  };
}
