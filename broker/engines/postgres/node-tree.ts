// Where a view's columns come from, read from its `_RETURN` rule (pg_rewrite.ev_action, a pg_node_tree):
// PostgreSQL records, for each output column of the view's query, the table OID and attribute number it
// is a plain reference to (resorigtbl / resorigcol: what a RowDescription would report for it), 0 otherwise.
//
// The text form is nested `{NODE :field value …}` and `( … )` lists; special characters inside tokens
// are backslash-escaped, so counting braces and parentheses (skipping escapes) finds the structure.

type Token = { t: string; depth: number };

function* tokens(s: string): Generator<Token> {
  let depth = 0;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '{' || c === '(') {
      depth++;
      yield { t: c, depth };
      i++;
    } else if (c === '}' || c === ')') {
      yield { t: c, depth };
      depth--;
      i++;
    } else if (c === ' ' || c === '\n' || c === '\t') {
      i++;
    } else {
      const start = i;
      while (i < s.length) {
        const d = s[i]!;
        if (d === '\\') i += 2;
        else if (d === ' ' || d === '\n' || d === '\t' || d === '{' || d === '}' || d === '(' || d === ')') break;
        else i++;
      }
      yield { t: s.slice(start, i), depth };
    }
  }
}

/** resno → [table OID, attnum] of the first query's target list (junk entries left out). */
export function viewColumnOrigins(tree: string): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  let queryDepth = -1;
  let listDepth = -1;
  let entryDepth = -1;
  let expectQuery = false;
  let expectList = false;
  let key: string | null = null;
  let entry: Record<string, string> = {};
  for (const { t, depth } of tokens(tree)) {
    if (queryDepth < 0) {
      if (t === '{') expectQuery = true;
      else if (expectQuery && t === 'QUERY') queryDepth = depth;
      else expectQuery = false;
      continue;
    }
    if (depth < queryDepth) break; // the first query ended
    if (listDepth < 0) {
      if (expectList) {
        expectList = false;
        if (t === '(') listDepth = depth;
        else if (t === '<>') break; // no target list
      } else if (depth === queryDepth && t === ':targetList') {
        expectList = true;
      }
      continue;
    }
    if (t === ')' && depth === listDepth) break; // the target list ended
    if (t === '{' && depth === listDepth + 1) {
      entryDepth = depth;
      entry = {};
      key = null;
    } else if (t === '}' && depth === entryDepth) {
      const resno = Number(entry[':resno']);
      if (entry[':resjunk'] !== 'true' && resno > 0) out.set(resno, [Number(entry[':resorigtbl'] ?? 0), Number(entry[':resorigcol'] ?? 0)]);
      entryDepth = -1;
    } else if (depth === entryDepth) {
      if (key) {
        entry[key] = t;
        key = null;
      } else if (t.startsWith(':')) {
        key = t;
      }
    } else if (depth > entryDepth) {
      key = null; // the field's value is a node
    }
  }
  return out;
}
