// Plain-text tables for the `jit` command's human output.

/** A table; a cell with line breaks spans as many lines (its row's other cells are blank below their first line). */
export function formatTable(headers: string[], rows: string[][]): string {
  const split = rows.map((r) => r.map((c) => c.split('\n')));
  const widths = headers.map((h, i) => Math.max(h.length, ...split.map((r) => Math.max(0, ...(r[i] ?? []).map((l) => l.length)))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const lines = [line(headers)];
  for (const r of split) {
    const height = Math.max(1, ...r.map((c) => c.length));
    for (let k = 0; k < height; k++) lines.push(line(r.map((c) => c[k] ?? '')));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * One line of text wrapped at `width` columns (at a space when there is one), at most `maxLines` lines;
 * what does not fit is cut, the last line ending in `…` (`cut` says so).
 */
export function wrapText(text: string, width: number, maxLines: number): { text: string; cut: boolean } {
  const lines: string[] = [];
  let rest = text;
  while (rest.length > width && lines.length < maxLines) {
    const space = rest.lastIndexOf(' ', width);
    const at = space > width / 2 ? space : width;
    lines.push(rest.slice(0, at).trimEnd());
    rest = rest.slice(at).trimStart();
  }
  if (lines.length < maxLines) return { text: [...lines, rest].join('\n'), cut: false };
  if (rest === '') return { text: lines.join('\n'), cut: false };
  const last = lines[maxLines - 1]!;
  lines[maxLines - 1] = `${last.slice(0, width - 1)}…`;
  return { text: lines.join('\n'), cut: true };
}

/** A time as the tables show it: `2025-01-31 12:00:00Z` (blank for none). */
export const when = (d: Date | null): string =>
  d
    ? d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z')
    : '';
