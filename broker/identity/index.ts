// Public API of broker/identity: token verification and the broker's own issuer.
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
