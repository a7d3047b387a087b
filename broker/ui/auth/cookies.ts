// The console's cookies: one Cookie header read and Set-Cookie written, by hand. Their values are sealed
// with jose (seal.ts), so @fastify/cookie's signing would be a plugin for what these few lines do.

/** The cookies of a request's Cookie header (the first of a name wins, as browsers send the most specific first). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    let value = part.slice(i + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

export interface CookieOptions {
  path: string;
  /** Seconds; 0 deletes the cookie. Absent: a browser-session cookie. */
  maxAge?: number;
  /** Sent over HTTPS only. */
  secure: boolean;
  sameSite: 'Strict' | 'Lax';
}

/** A Set-Cookie value: always HttpOnly. Values are base64url/JWE text, which needs no quoting. */
export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  if (!/^[A-Za-z0-9_.~-]*$/.test(value)) throw new Error(`cookie ${name}: unexpected characters in its value`);
  const parts = [`${name}=${value}`, `Path=${o.path}`, 'HttpOnly', `SameSite=${o.sameSite}`];
  if (o.maxAge !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(o.maxAge))}`);
  if (o.secure) parts.push('Secure');
  return parts.join('; ');
}
