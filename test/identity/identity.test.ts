import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignJWT, base64url, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { LocalIssuer, TokenRefusedError, createVerifier, type IssuerConfig, type RefusalCheck } from '../../broker/identity/index.js';

const now = (): number => Math.floor(Date.now() / 1000);
let dir: string;
let server: Server;
let base: string; // the "remote" issuer, served by the test's own HTTP server
let deadBase: string; // a port nobody listens on
let jwksFile: string;
let local: LocalIssuer;
let es: CryptoKey; // in the JWKS as kid 'es-1'
let rs: CryptoKey; // in the JWKS as kid 'rs-1'
let stranger: CryptoKey; // in no JWKS
const hits: Record<string, number> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jit-identity-'));
  const esPair = await generateKeyPair('ES256');
  const rsPair = await generateKeyPair('RS256');
  es = esPair.privateKey;
  rs = rsPair.privateKey;
  stranger = (await generateKeyPair('ES256')).privateKey;
  const jwks = {
    keys: [
      { ...(await exportJWK(esPair.publicKey)), kid: 'es-1', alg: 'ES256', use: 'sig' },
      { ...(await exportJWK(rsPair.publicKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' },
    ],
  };
  jwksFile = join(dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify(jwks));
  server = createServer((req, res) => {
    const path = req.url ?? '';
    hits[path] = (hits[path] ?? 0) + 1;
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (path === '/.well-known/openid-configuration') json(200, { issuer: base, jwks_uri: `${base}/jwks` });
    else if (path === '/jwks') json(200, jwks);
    else json(500, { error: 'broken' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dead = createServer();
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  deadBase = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  await new Promise((resolve) => dead.close(resolve));
  local = await LocalIssuer.loadOrCreate(join(dir, 'keys', 'issuer.jwk'), 'https://broker.test');
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  for (const k of Object.keys(hits)) delete hits[k];
});

interface Mint {
  iss?: string;
  aud?: string;
  sub?: string | null;
  key?: CryptoKey;
  kid?: string;
  alg?: string;
  exp?: number | null;
  nbf?: number;
  claims?: Record<string, unknown>;
}
async function mint(o: Mint = {}): Promise<string> {
  const jwt = new SignJWT({ ...o.claims })
    .setProtectedHeader({ alg: o.alg ?? 'ES256', kid: o.kid ?? 'es-1' })
    .setIssuer(o.iss ?? base)
    .setAudience(o.aud ?? 'jit')
    .setIssuedAt();
  if (o.sub !== null) jwt.setSubject(o.sub ?? 'ci-job');
  if (o.exp !== null) jwt.setExpirationTime(o.exp ?? now() + 300);
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
  return jwt.sign(o.key ?? es);
}

const FILE = 'https://file.test';
const URI = 'https://uri.test';
function verifier(extra: IssuerConfig[] = [], isRevoked?: (id: { jti: string | null }) => boolean | Promise<boolean>) {
  return createVerifier({
    issuers: [
      { issuer: base, audience: 'jit' },
      { issuer: URI, audience: ['jit', 'other'], jwks_uri: `${base}/jwks` },
      { issuer: FILE, audience: 'jit', jwks_file: jwksFile },
      ...extra,
    ],
    local: { issuer: local, audience: 'jit-broker' },
    isRevoked,
  });
}

async function refused(p: Promise<unknown>, check: RefusalCheck, token: string): Promise<TokenRefusedError> {
  const err: unknown = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenRefusedError);
  const e = err as TokenRefusedError;
  expect(e.check).toBe(check);
  expect(e.message).toMatch(/^token refused: /);
  expect(e.message.toLowerCase()).toContain(check.replace(/_/g, ' '));
  expect(e.message).not.toContain(token);
  for (const part of token.split('.')) if (part.length > 8) expect(e.message).not.toContain(part);
  return e;
}

describe('LocalIssuer', () => {
  it('round-trips a token into an Identity', async () => {
    const token = await local.sign({
      subject: 'agent-7',
      build: 'acme/app/9/1',
      audience: 'jit-broker',
      ttlSeconds: 300,
      claims: { scope: 'read', target: 'orders', noise: 'dropped' },
    });
    const id = await verifier().verify(token);
    expect(id.subject).toBe('agent-7');
    expect(id.issuer).toBe('https://broker.test');
    expect(id.build).toBe('acme/app/9/1');
    expect(id.claims).toEqual({ build: 'acme/app/9/1', scope: 'read', target: 'orders' });
    expect(id.actors).toEqual([]);
    expect(id.tokenId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Math.abs(id.expiresAt.getTime() - (Date.now() + 300_000))).toBeLessThan(5_000);
    await refused(verifier().verify(await local.sign({ subject: 'a', audience: 'nope', ttlSeconds: 60 })), 'audience', token);
  });

  it('publishes only public key members', () => {
    const { keys } = local.jwks();
    expect(keys).toHaveLength(1);
    for (const k of keys) {
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(k).not.toHaveProperty(secret);
      expect(k).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: local.kid });
    }
  });

  it('persists its key with mode 0600 and reloads the same key', async () => {
    const path = join(dir, 'keys', 'issuer.jwk');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(await readFile(path, 'utf8')) as JWK;
    expect(saved).toMatchObject({ kid: local.kid, alg: 'ES256', use: 'sig' });
    expect(saved.d).toMatch(/^[A-Za-z0-9_-]{43}$/); // the P-256 private scalar, base64url
    const again = await LocalIssuer.loadOrCreate(path, 'https://broker.test');
    expect(again.kid).toBe(local.kid);
    const token = await local.sign({ subject: 's', audience: 'jit-broker', ttlSeconds: 60 });
    await expect(createVerifier({ issuers: [], local: { issuer: again, audience: 'jit-broker' } }).verify(token)).resolves.toMatchObject({ subject: 's' });
  });
});

describe('remote issuers', () => {
  it('verifies via OIDC discovery, jwks_uri and jwks_file', async () => {
    const v = verifier();
    expect((await v.verify(await mint())).issuer).toBe(base);
    expect(hits['/.well-known/openid-configuration']).toBe(1);
    expect((await v.verify(await mint({ key: rs, kid: 'rs-1', alg: 'RS256' }))).subject).toBe('ci-job');
    expect((await v.verify(await mint({ iss: URI, aud: 'other' }))).issuer).toBe(URI);
    expect((await v.verify(await mint({ iss: FILE }))).issuer).toBe(FILE);
  });

  it('does not fetch discovery or the JWKS once per verify', async () => {
    const v = verifier();
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => mint({ sub: `job-${i}` })));
    await Promise.all(tokens.slice(0, 5).map((t) => v.verify(t)));
    for (const t of tokens.slice(5)) await v.verify(t);
    expect(hits['/.well-known/openid-configuration']).toBe(1);
    expect(hits['/jwks']).toBe(1);
  });

  it('derives build ids from GitHub and GitLab claims and from a template', async () => {
    const gh = { repository: 'acme/app', repository_owner: 'acme', run_id: '123', run_attempt: '1', sha: 'abc', secret_sauce: 'x' };
    const id = await verifier().verify(await mint({ claims: gh }));
    expect(id.build).toBe('acme/app/123/1');
    expect(id.claims).toEqual({ repository: 'acme/app', repository_owner: 'acme', run_id: '123', run_attempt: '1', sha: 'abc' });
    const gl = await verifier().verify(await mint({ claims: { project_path: 'group/proj', pipeline_id: '456', job_id: 9 } }));
    expect(gl.build).toBe('group/proj/456');
    expect(gl.claims).toEqual({ project_path: 'group/proj', pipeline_id: '456', job_id: 9 });
    expect((await verifier().verify(await mint({ claims: { plain: 1 } }))).build).toBeNull();
    const T = 'https://tpl.test';
    const v = verifier([{ issuer: T, audience: 'jit', jwks_file: jwksFile, build: '{repository}@{sha}#{custom}' }]);
    const templated = await v.verify(await mint({ iss: T, claims: { ...gh, custom: 7 } }));
    expect(templated.build).toBe('acme/app@abc#7');
    expect(templated.claims['custom']).toBe(7);
    expect((await v.verify(await mint({ iss: T, claims: gh }))).build).toBe('acme/app/123/1'); // {custom} missing: fall back
  });

  it('flattens RFC 8693 act chains, outermost actor first', async () => {
    const act = { sub: 'agent-b', act: { sub: 'bot-a' } };
    const id = await verifier().verify(await local.sign({ subject: 'ci', audience: 'jit-broker', ttlSeconds: 60, claims: { act } }));
    expect(id.actors).toEqual(['agent-b', 'bot-a']);
    expect(id.claims['act']).toEqual(act);
    const bad = await mint({ claims: { act: { act: { sub: 'x' } } } });
    await refused(verifier().verify(bad), 'malformed', bad);
  });

  it('accepts a claim glob match, including any element of an array claim', async () => {
    const G = 'https://gh.test';
    const v = verifier([{ issuer: G, audience: 'jit', jwks_file: jwksFile, claims: { repository: 'acme/*', ref: 'refs/heads/v?' } }]);
    await expect(v.verify(await mint({ iss: G, claims: { repository: 'acme/app', ref: ['refs/tags/x', 'refs/heads/v2'] } }))).resolves.toMatchObject({
      claims: { repository: 'acme/app' },
    });
  });
});

describe('refusals', () => {
  it('alg none', async () => {
    const enc = (o: object): string => base64url.encode(JSON.stringify(o));
    const token = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ iss: base, aud: 'jit', sub: 'x', exp: now() + 60 })}.`;
    await refused(verifier().verify(token), 'algorithm', token);
  });

  it('HS256 signed with a shared secret', async () => {
    const token = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(base)
      .setAudience('jit')
      .setExpirationTime(now() + 60)
      .sign(new TextEncoder().encode('a-secret-anyone-could-guess-0123456789'));
    await refused(verifier().verify(token), 'algorithm', token);
  });

  it('an algorithm the issuer does not allow', async () => {
    const R = 'https://rs-only.test';
    const token = await mint({ iss: R });
    await refused(verifier([{ issuer: R, audience: 'jit', jwks_file: jwksFile, algorithms: ['RS256'] }]).verify(token), 'algorithm', token);
  });

  it('a key the JWKS does not hold', async () => {
    const v = verifier();
    for (const iss of [URI, FILE, base]) {
      const token = await mint({ iss, key: stranger, kid: 'stranger-1' });
      const e = await refused(v.verify(token), 'unknown_key', token);
      expect(e.message).toContain('stranger-1');
    }
  });

  it('a signature by another key claiming a present kid', async () => {
    const token = await mint({ key: stranger, kid: 'es-1' });
    await refused(verifier().verify(token), 'signature', token);
  });

  it('expired, beyond the clock skew', async () => {
    const token = await mint({ exp: now() - 120 });
    const e = await refused(verifier().verify(token), 'expired', token);
    expect(e.message).toMatch(/expired 1[12]\ds ago \(exp \d{4}-/);
    await expect(verifier().verify(await mint({ exp: now() - 10 }))).resolves.toMatchObject({ subject: 'ci-job', issuer: base }); // within 30s skew
  });

  it('not yet valid', async () => {
    const token = await mint({ nbf: now() + 300 });
    await refused(verifier().verify(token), 'not_yet_valid', token);
  });

  it('wrong audience', async () => {
    const token = await mint({ aud: 'somebody-else' });
    const e = await refused(verifier().verify(token), 'audience', token);
    expect(e.message).toContain(`audience 'somebody-else' is not accepted by issuer ${base}`);
  });

  it('untrusted issuer', async () => {
    const token = await mint({ iss: 'https://evil.test' });
    await refused(verifier().verify(token), 'issuer', token);
  });

  it('claim constraint glob mismatch', async () => {
    const G = 'https://gh.test';
    const v = verifier([{ issuer: G, audience: 'jit', jwks_file: jwksFile, claims: { repository: 'acme/*' } }]);
    for (const claims of [{ repository: 'evil/app' }, {}]) {
      const token = await mint({ iss: G, claims });
      const e = await refused(v.verify(token), 'claims', token);
      expect(e.message).toContain("'repository'");
    }
  });

  it('missing exp or sub is malformed, and so is garbage', async () => {
    for (const token of [await mint({ exp: null }), await mint({ sub: null }), 'not-a-jwt', 'a.b.c']) {
      await refused(verifier().verify(token), 'malformed', token);
    }
  });

  it('JWKS or discovery unreachable fails closed', async () => {
    const cases: IssuerConfig[] = [
      { issuer: deadBase, audience: 'jit' },
      { issuer: 'https://down.test', audience: 'jit', jwks_uri: `${deadBase}/jwks` },
      { issuer: 'https://broken.test', audience: 'jit', jwks_uri: `${base}/broken` },
      { issuer: 'https://nofile.test', audience: 'jit', jwks_file: join(dir, 'missing.json') },
    ];
    for (const cfg of cases) {
      const token = await mint({ iss: cfg.issuer });
      await refused(createVerifier({ issuers: [cfg] }).verify(token), 'jwks_unavailable', token);
    }
  });

  it('revoked, and revocation check failing closed', async () => {
    const token = await local.sign({ subject: 's', audience: 'jit-broker', ttlSeconds: 60 });
    const seen: (string | null)[] = [];
    const v = verifier([], ({ jti }) => (seen.push(jti), true));
    await refused(v.verify(token), 'revoked', token);
    expect(seen[0]).toMatch(/^[0-9a-f-]{36}$/);
    await refused(verifier([], () => Promise.reject(new Error('store down'))).verify(token), 'revoked', token);
    await expect(verifier([], () => false).verify(token)).resolves.toMatchObject({ subject: 's', tokenId: seen[0] });
  });

  it('refuses symmetric algorithms in the configuration', () => {
    expect(() => createVerifier({ issuers: [{ issuer: 'https://x.test', audience: 'jit', algorithms: ['HS256'] }] })).toThrow(/asymmetric/);
  });
});
