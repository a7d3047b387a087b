// The check an engine runs on a client's password: verify the token (signature, claims, revocation),
// then, when `identity.single_use` is on, claim its `jti` so a second session-opening with the same
// token is refused ("token already used"). Engines call verify(); the composition root calls opened()
// once the session is recorded, to link the use to it.
import type { Store } from '../store/index.js';
import type { Identity } from '../types.js';
import { TokenRefusedError, type Verifier } from './verifier.js';

export interface LoginGuardOptions {
  verifier: Verifier;
  store: Store;
  /** `identity.single_use`. */
  singleUse: boolean;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface LoginGuard {
  verify(token: string): Promise<Identity>;
  /** Links the token's use to the session it opened (single use only; failures are logged). */
  opened(identity: Identity, sessionId: string): Promise<void>;
}

/** Uses of tokens that expired this long ago are pruned at start (they are refused as expired anyway). */
const PRUNE_AFTER_MS = 3600_000;

export async function createLoginGuard(o: LoginGuardOptions): Promise<LoginGuard> {
  const log = o.log ?? (() => {});
  if (o.singleUse) {
    const pruned = await o.store.pruneTokenUses(new Date(Date.now() - PRUNE_AFTER_MS));
    if (pruned) log('pruned uses of expired tokens', { pruned });
  }
  return {
    async verify(token) {
      const identity = await o.verifier.verify(token);
      if (!o.singleUse) return identity;
      const jti = identity.tokenId;
      if (!jti) {
        throw new TokenRefusedError('used', 'token refused: the token has no jti, and identity.single_use needs one to tell a token used once from a replay');
      }
      let first: boolean;
      try {
        first = await o.store.claimTokenUse({ jti, issuer: identity.issuer, usedAt: new Date(), expiresAt: identity.expiresAt });
      } catch (err) {
        throw new TokenRefusedError('used', 'token refused: the single-use check could not be recorded; failing closed, try again', { cause: err });
      }
      if (!first) {
        throw new TokenRefusedError(
          'used',
          `token refused: token already used (jti ${jti}): identity.single_use allows one session per token; get a new one (jit token exchange)`,
        );
      }
      return identity;
    },
    async opened(identity, sessionId) {
      if (!o.singleUse || !identity.tokenId) return;
      await o.store
        .setTokenUseSession(identity.tokenId, sessionId)
        .catch((e: unknown) => log('token use could not be linked to its session', { error: String(e) }));
    },
  };
}
