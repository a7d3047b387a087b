// Sealed cookie values: a JWE (dir + A256GCM, jose) under the console's key: encrypted, so what it holds (a
// name, an e-mail, groups, the CSRF token) is not readable in the browser, and authenticated, so it cannot be
// forged or altered. Each kind of cookie has its own audience: a sign-in state cannot pass for a session.
import { EncryptJWT, jwtDecrypt, type JWTPayload } from 'jose';

export type SealPurpose = 'jit-ui-session' | 'jit-ui-login';

export class Sealer {
  constructor(private readonly key: Uint8Array) {}

  /** Seals `payload` for `ttlSeconds`; the value is URL-safe cookie text. */
  async seal(payload: JWTPayload, purpose: SealPurpose, ttlSeconds: number): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new EncryptJWT(payload)
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setAudience(purpose)
      .setIssuedAt(now)
      .setExpirationTime(now + Math.ceil(ttlSeconds))
      .encrypt(this.key);
  }

  /** What `value` holds, or null when it is absent, not sealed by this key, for another purpose, or expired. */
  async open(value: string | undefined, purpose: SealPurpose): Promise<JWTPayload | null> {
    if (!value) return null;
    try {
      const { payload } = await jwtDecrypt(value, this.key, {
        audience: purpose,
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      return payload;
    } catch {
      return null;
    }
  }
}
