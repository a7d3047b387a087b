// Ids the store hands out (sessions, approval requests), how a typed session id is read, and the error a
// prefix matching several sessions gives (Store.getSession()).
import { randomBytes } from 'node:crypto';

export class AmbiguousSessionIdError extends Error {
  constructor(
    readonly prefix: string,
    readonly matches: string[],
  ) {
    super(`session id prefix "${prefix}" is ambiguous (${matches.join(', ')}, ...): type more characters`);
    this.name = 'AmbiguousSessionIdError';
  }
}

// Crockford's base32 alphabet, lower case: no i, l, o, u, so ids survive being read aloud and retyped.
const ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** `s_` + 16 base32 characters = 80 random bits. */
export function newSessionId(): string {
  return newId('s_');
}

/** `a_` + 16 base32 characters = 80 random bits. */
export function newApprovalId(): string {
  return newId('a_');
}

function newId(prefix: string): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = prefix;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ID_ALPHABET[(value >>> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

/** Normalises what a user typed as a session id (or prefix): trimmed, lower case, `s_` added. */
export function normalizeSessionIdPrefix(input: string): string {
  const p = input.trim().toLowerCase();
  if (p === '') return '';
  return p.startsWith('s_') ? p : `s_${p}`;
}
