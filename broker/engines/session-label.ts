// What a session's upstream connection says about itself in the database's own tools: `jit:<session>:<build>`
// (PostgreSQL's application_name in pg_stat_activity; MySQL's program_name connect attribute), so a DBA sees which
// build runs what without asking the broker.

/** `jit:<session>:<build>` (`jit:<session>` without a build), at most `maxBytes` of UTF-8, never a character cut in two. */
export function sessionLabel(sessionId: string, build: string | null, maxBytes = 63): string {
  return cutBytes(`jit:${sessionId}${build ? `:${build}` : ''}`, maxBytes);
}

/** `text` cut to at most `maxBytes` of UTF-8 (at a character's boundary); NUL characters, which no protocol carries, dropped. */
export function cutBytes(text: string, maxBytes: number): string {
  const clean = text.replace(/\0/g, '');
  if (Buffer.byteLength(clean, 'utf8') <= maxBytes) return clean;
  let out = '';
  let bytes = 0;
  for (const ch of clean) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}
