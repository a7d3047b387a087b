// A session role's name (the prefix and the session id), its password, the SCRAM secret PostgreSQL stores
// for it, and the target's URL with the role's name and password in place of the broker's own.
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

/** The longest user name each server takes: PostgreSQL 63 bytes (NAMEDATALEN - 1), MySQL 32 characters (MariaDB 80). */
export const NAME_LIMIT = { postgres: 63, mysql: 32 } as const;

/** A session id as broker/store/ids.ts makes them: `s_` and 16 base32 characters. */
const SESSION_ID = /^s_[0-9a-z]{16}$/;

/** The session's role: prefix + session id, lower-cased, anything but a-z 0-9 _ as `_`, at most `limit` characters. */
export function sessionRoleName(prefix: string, sessionId: string, limit: number): string {
  const name = `${prefix}${sessionId}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (name.length > limit) throw new Error(`the session role name ${name} is longer than the server's ${limit} characters`);
  return name;
}

/** The session id a role of this prefix is named after; null when the name is not exactly prefix + a session id. */
export function sessionOfRole(prefix: string, role: string): string | null {
  if (!role.startsWith(prefix)) return null;
  const id = role.slice(prefix.length);
  return SESSION_ID.test(id) ? id : null;
}

/**
 * A random password: 24 bytes as base64url (letters, digits, `-` `_`: nothing to quote), then `.Aa1`, so a server's
 * password-strength check (a digit, both cases, a special character) never refuses it.
 */
export function newRolePassword(): string {
  return `${randomBytes(24).toString('base64url')}.Aa1`;
}

const pbkdf2Async = promisify(pbkdf2);

/**
 * The SCRAM-SHA-256 secret PostgreSQL keeps for a password (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`):
 * given as CREATE ROLE's PASSWORD, the password itself never reaches the server, or its statement log.
 */
export async function scramSecret(password: string, iterations = 4096): Promise<string> {
  const salt = randomBytes(16);
  const salted = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
  const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest();
  const stored = createHash('sha256').update(hmac(salted, 'Client Key')).digest();
  const server = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${stored.toString('base64')}:${server.toString('base64')}`;
}

/** The target's URL with another user and password: same host, port, database and TLS settings. */
export function withLogin(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}
