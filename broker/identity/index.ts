// Public API of broker/identity: token verification, the broker's own issuer, token exchange, revocation.
export { LocalIssuer, LOCAL_ALG, type SignOptions } from './local-issuer.js';
export {
  ASYMMETRIC_ALGORITHMS,
  TokenRefusedError,
  createVerifier,
  type IssuerConfig,
  type RefusalCheck,
  type Verifier,
  type VerifierOptions,
} from './verifier.js';
export {
  GRANT_TOKEN_EXCHANGE,
  TOKEN_TYPE_ACCESS,
  TOKEN_TYPE_ID,
  TOKEN_TYPE_JWT,
  exchangeToken,
  type ExchangeErrorCode,
  type ExchangeOptions,
  type ExchangeRequest,
  type ExchangeResponse,
  type ExchangeResult,
} from './exchange.js';
export { RevocationService, type LiveSession, type RevocationOptions, type RevokeInput, type RevokeResult } from './revocation.js';
export { createLoginGuard, type LoginGuard, type LoginGuardOptions } from './login.js';
export { identityAncestors, identityDepth, identityScope, identityTargets, outOfScope, parseScope, scopeAllows, type Scope } from './limits.js';
