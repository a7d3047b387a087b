// Durations as the config and the CLI write them: `250ms`, `30s`, `5m`, `1h`, `2d`, or a bare number of
// seconds. Kept apart from the config's schema so `jit token --ttl` reads one without loading zod.
const UNITS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 } as const;

/** Seconds, or null when `v` is not a duration. */
export function parseDuration(v: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(v.trim());
  return m ? Number(m[1]) * UNITS[(m[2] ?? 's') as keyof typeof UNITS] : null;
}
