/**
 * What every console page renderer is given besides its data: where the console is mounted, who is
 * signed in (null on the sign-in and error pages), the CSRF token the forms carry, and the time the
 * page is rendered at (relative times — "expires in", "waiting for" — are computed against it, so a
 * test can pin it).
 */
export interface UiContext {
  /** Mount point of the console, without a trailing slash: '/ui'. */
  base: string;
  user: { name: string; email: string | null; canApprove: boolean } | null;
  /** Value of the hidden `_csrf` field in every POST form. */
  csrf: string;
  now: Date;
}
