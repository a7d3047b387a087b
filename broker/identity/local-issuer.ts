// The broker's own token issuer (dev tokens, token exchange): one ES256 key kept in a 0600 JWK file.
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';

export const LOCAL_ALG = 'ES256';

export interface SignOptions {
  subject: string;
  /** Build id, written as the `build` claim. */
  build?: string;
  audience: string | string[];
  ttlSeconds: number;
  /** Latest `exp` allowed (epoch seconds): the token expires at the earlier of this and now + ttlSeconds. */
  notAfter?: number;
  /** Extra claims (e.g. `act`, `scope`, `target`); the registered claims set by `sign` win over these. */
  claims?: Record<string, unknown>;
}

/** Public members of an EC / OKP / RSA JWK: everything a verifier may see. */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e', 'kid', 'alg', 'use'] as const;

function publicPart(jwk: JWK): JWK {
  const out: JWK = {};
  for (const name of PUBLIC_MEMBERS) if (jwk[name] !== undefined) out[name] = jwk[name];
  return out;
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

export class LocalIssuer {
  readonly #issuer: string;
  readonly #privateKey: CryptoKey;
  readonly #publicJwk: JWK;
  readonly #keySet: JWTVerifyGetKey;
  /** The public key, for callers that want to verify with jose directly. */
  readonly publicKey: CryptoKey;

  private constructor(issuer: string, privateKey: CryptoKey, publicKey: CryptoKey, publicJwk: JWK) {
    this.#issuer = issuer;
    this.#privateKey = privateKey;
    this.publicKey = publicKey;
    this.#publicJwk = publicJwk;
    this.#keySet = createLocalJWKSet({ keys: [publicJwk] });
  }

  /**
   * Loads the private JWK at keyPath, or generates one and writes it there (folder created, file mode
   * 0600). Creation is race-free: the key is written to a temporary file and hard-linked into place, so
   * two brokers starting at once end up sharing whichever key landed first.
   */
  static async loadOrCreate(keyPath: string, issuerUrl: string): Promise<LocalIssuer> {
    if (!issuerUrl) throw new Error('local issuer: issuer url must not be empty');
    let text: string | null = null;
    try {
      text = await readFile(keyPath, 'utf8');
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    if (text === null) {
      const jwk = await LocalIssuer.#generate();
      await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
      const tmp = `${keyPath}.${process.pid}.${randomUUID()}.tmp`;
      await writeFile(tmp, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      try {
        await link(tmp, keyPath);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err; // somebody else created it meanwhile: use theirs
      } finally {
        await unlink(tmp);
      }
      text = await readFile(keyPath, 'utf8');
    }
    return LocalIssuer.#fromJwkText(text, keyPath, issuerUrl);
  }

  static async #generate(): Promise<JWK> {
    const { privateKey } = await generateKeyPair(LOCAL_ALG, { extractable: true });
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(publicPart(jwk));
    return { ...jwk, kid, alg: LOCAL_ALG, use: 'sig' };
  }

  static async #fromJwkText(text: string, keyPath: string, issuerUrl: string): Promise<LocalIssuer> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`local issuer: key file ${keyPath} is not valid JSON (delete it to generate a new key)`);
    }
    const jwk = parsed as JWK;
    if (typeof parsed !== 'object' || parsed === null || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d) {
      throw new Error(`local issuer: key file ${keyPath} does not hold an ES256 (EC P-256) private JWK`);
    }
    if (jwk.alg !== undefined && jwk.alg !== LOCAL_ALG) {
      throw new Error(`local issuer: key file ${keyPath} has alg '${jwk.alg}', expected ${LOCAL_ALG}`);
    }
    const pub = publicPart(jwk);
    const kid = jwk.kid ?? (await calculateJwkThumbprint(pub));
    const publicJwk: JWK = { ...pub, kid, alg: LOCAL_ALG, use: 'sig' };
    const privateKey = await importJWK({ ...jwk, kid, alg: LOCAL_ALG }, LOCAL_ALG);
    const publicKey = await importJWK(publicJwk, LOCAL_ALG);
    if (privateKey instanceof Uint8Array || publicKey instanceof Uint8Array) {
      throw new Error(`local issuer: key file ${keyPath} holds a symmetric key`);
    }
    return new LocalIssuer(issuerUrl, privateKey, publicKey, publicJwk);
  }

  get issuer(): string {
    return this.#issuer;
  }

  get kid(): string {
    return this.#publicJwk.kid ?? '';
  }

  /** Key resolver over this issuer's own key set, for `jwtVerify` without any HTTP. */
  get keySet(): JWTVerifyGetKey {
    return this.#keySet;
  }

  async sign(opts: SignOptions): Promise<string> {
    if (!opts.subject) throw new Error('local issuer: subject must not be empty');
    if (!Number.isFinite(opts.ttlSeconds) || opts.ttlSeconds <= 0) {
      throw new Error(`local issuer: ttlSeconds must be a positive number, got ${opts.ttlSeconds}`);
    }
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = { ...(opts.claims ?? {}) };
    if (opts.build !== undefined) payload['build'] = opts.build;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: LOCAL_ALG, kid: this.kid, typ: 'JWT' })
      .setIssuer(this.#issuer)
      .setSubject(opts.subject)
      .setAudience(opts.audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(Math.min(now + Math.ceil(opts.ttlSeconds), opts.notAfter ?? Infinity))
      .setJti(randomUUID())
      .sign(this.#privateKey);
  }

  /** The public JWKS (what `/.well-known/jwks.json` serves). Never contains private members. */
  jwks(): { keys: JWK[] } {
    return { keys: [{ ...this.#publicJwk }] };
  }
}
