// `--since` / `?since=` on its own (no jose, no store): `jit logins --since` parses it while reading its options.

/** `--since` / `?since=`: a duration back from now (`90s`, `15m`, `1h`, `7d`) or a date (ISO 8601). */
export function parseSince(v: string, now = Date.now()): Date | null {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(v.trim());
  if (m) return new Date(now - Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'] * 1000);
  if (!/^\d{4}-\d\d-\d\d/.test(v.trim())) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}
