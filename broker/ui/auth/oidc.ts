// Sign-in through OpenID Connect: the authorization code flow with PKCE, by openid-client. The issuer is
// discovered at the first sign-in (and again after a failure); state, nonce and the PKCE verifier travel in a
// short-lived sealed cookie (routes/auth.ts); the ID token's claims say who signed in. openid-client is loaded at
// the first sign-in: a broker whose console nobody signs in to through OIDC never loads it.
import type * as OpenId from 'openid-client';
import { isLoopbackHost } from '../security.js';

export interface OidcSettings {
  issuer: string;
  client_id: string;
  client_secret?: string;
  scopes: string[];
  groups_claim: string;
}

/** What the browser carries between the redirect to the identity provider and the callback. */
export interface PendingSignIn {
  state: string;
  nonce: string;
  verifier: string;
  redirectUri: string;
  next: string;
}

export interface OidcIdentity {
  sub: string;
  name: string;
  email: string | null;
  groups: string[];
  /** Every claim of the ID token (for ui.viewers). */
  claims: Record<string, unknown>;
}

const openId = () => import('openid-client');

const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);

export class OidcSignIn {
  private config: Promise<OpenId.Configuration> | null = null;

  constructor(private readonly s: OidcSettings) {}

  /** The issuer's configuration, discovered once; a failed discovery is tried again at the next sign-in. */
  private configuration(): Promise<OpenId.Configuration> {
    if (!this.config) {
      const issuer = new URL(this.s.issuer);
      // Plain http only for an identity provider on this machine (a test, a local dev IdP).
      const insecure = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname);
      this.config = openId()
        .then((client) => {
          const auth = this.s.client_secret ? client.ClientSecretPost(this.s.client_secret) : client.None();
          return client.discovery(issuer, this.s.client_id, this.s.client_secret, auth, insecure ? { execute: [client.allowInsecureRequests] } : undefined);
        })
        .catch((e: unknown) => {
          this.config = null;
          throw e;
        });
    }
    return this.config;
  }

  /** Where to send the browser, and what to remember until it comes back. */
  async start(redirectUri: string, next: string): Promise<{ url: URL; pending: PendingSignIn }> {
    const config = await this.configuration();
    const client = await openId();
    const pending: PendingSignIn = { state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier(), redirectUri, next };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: this.s.scopes.join(' '),
      response_type: 'code',
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
    });
    return { url, pending };
  }

  /** The callback: exchanges the code (checking state, nonce, PKCE and the ID token) for who signed in. */
  async finish(callbackUrl: URL, pending: PendingSignIn): Promise<OidcIdentity> {
    const config = await this.configuration();
    const client = await openId();
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) throw new Error('the identity provider returned no ID token');
    const all = { ...claims } as Record<string, unknown>;
    const g = all[this.s.groups_claim];
    const groups = Array.isArray(g) ? g.filter((x): x is string => typeof x === 'string') : typeof g === 'string' ? [g] : [];
    // An address the identity provider says it has not verified is not used: approvers are matched by e-mail.
    const email = all.email_verified === false ? null : text(all.email);
    return {
      sub: claims.sub,
      name: text(all.name) ?? text(all.preferred_username) ?? email ?? claims.sub,
      email,
      groups,
      claims: all,
    };
  }
}
