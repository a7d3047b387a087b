// Value detectors: find card numbers, e-mail addresses, US SSNs (and configured patterns) inside any text,
// whatever the column is called or whether it came from a column at all (`lower(email)`, `row_to_json(t)`,
// `array_agg(email)`, a COPY row), and replace just what they found. Engine-agnostic: text in, text out.
import type { Masker } from './maskers.js';

export interface Detector {
  readonly name: string;
  /** Reports each value found in `text`, in order, as [start, end) UTF-16 offsets. */
  scan(text: string, found: (start: number, end: number) => void): void;
}

export const BUILTIN_DETECTORS = ['card', 'email', 'ssn'] as const;

const isDigit = (c: number) => c >= 48 && c <= 57;
const isAlpha = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isLocal = (c: number) => isDigit(c) || isAlpha(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45; // . _ % + -
const isDomain = (c: number) => isDigit(c) || isAlpha(c) || c === 46 || c === 45; // . -

/** The Luhn checksum of the digits in `s` (other characters skipped). */
export function luhn(s: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) continue;
    let d = c - 48;
    if (double && (d *= 2) > 9) d -= 9;
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * E-mail addresses, found from each `@` outwards (linear: no regular expression backtracks over long text).
 * The local part is at most 64 characters of [A-Za-z0-9._%+-]; the domain has a dot and a top-level domain
 * of two or more letters.
 */
const email: Detector = {
  name: 'email',
  scan(text, found) {
    let from = 0;
    for (let at = text.indexOf('@', from); at >= 0; at = text.indexOf('@', from)) {
      let l = at;
      while (l > from && at - l < 64 && isLocal(text.charCodeAt(l - 1))) l--;
      while (l < at && text.charCodeAt(l) === 46) l++; // a local part does not start with a dot
      let r = at + 1;
      while (r < text.length && r - at <= 255 && isDomain(text.charCodeAt(r))) r++;
      while (r > at + 1 && (text.charCodeAt(r - 1) === 46 || text.charCodeAt(r - 1) === 45)) r--;
      const domain = text.slice(at + 1, r);
      const dot = domain.lastIndexOf('.');
      if (l < at && dot > 0 && !domain.includes('..') && /^[A-Za-z]{2,}$/.test(domain.slice(dot + 1))) {
        found(l, r);
        from = r;
      } else {
        from = at + 1;
      }
    }
  },
};

/** Payment card numbers: 13–19 digits, single spaces or dashes allowed between them, Luhn-valid. */
const CARD = /(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])/g;
const card: Detector = {
  name: 'card',
  scan(text, found) {
    if (text.length < 13) return;
    CARD.lastIndex = 0;
    for (let m = CARD.exec(text); m; m = CARD.exec(text)) {
      if (luhn(m[0])) found(m.index, m.index + m[0].length);
    }
  },
};

/** US social security numbers written ddd-dd-dddd, without the ranges never issued (000, 666, 9xx; 00; 0000). */
const SSN = /(?<![0-9-])([0-9]{3})-([0-9]{2})-([0-9]{4})(?![0-9-])/g;
const ssn: Detector = {
  name: 'ssn',
  scan(text, found) {
    if (text.length < 11) return;
    SSN.lastIndex = 0;
    for (let m = SSN.exec(text); m; m = SSN.exec(text)) {
      const [all, area, group, serial] = m as unknown as [string, string, string, string];
      if (area === '000' || area === '666' || area[0] === '9' || group === '00' || serial === '0000') continue;
      found(m.index, m.index + all.length);
    }
  },
};

const BUILTINS: Record<(typeof BUILTIN_DETECTORS)[number], Detector> = { card, email, ssn };

export function builtinDetector(name: string): Detector | undefined {
  return Object.hasOwn(BUILTINS, name) ? BUILTINS[name as keyof typeof BUILTINS] : undefined;
}

/** Why a configured pattern cannot be a detector, or null when it can. */
export function patternProblem(source: string): string | null {
  let re: RegExp;
  try {
    re = new RegExp(source, 'g');
  } catch (e) {
    return (e as Error).message;
  }
  return re.test('') ? 'the pattern matches the empty string' : null;
}

/** A configured detector: every match of the regular expression (JavaScript syntax, no flags). */
export function regexDetector(name: string, source: string): Detector {
  const re = new RegExp(source, 'g');
  return {
    name,
    scan(text, found) {
      re.lastIndex = 0;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        if (m[0].length === 0) re.lastIndex++;
        else found(m.index, m.index + m[0].length);
      }
    },
  };
}

export interface DetectorUse {
  detector: Detector;
  masker: Masker;
}

/** Whether offset `pos` of JSON text is inside a string literal, scanning on from a known state. */
function jsonStringState(text: string, from: number, pos: number, inString: boolean): boolean {
  for (let i = from; i < pos; i++) {
    const c = text.charCodeAt(i);
    if (inString && c === 92)
      i++; // backslash escapes the next character
    else if (c === 34) inString = !inString;
  }
  return inString;
}

/** A set of detectors, each with the masker its rule names, applied together over one value. */
export class Detection {
  /** Reused by apply() (never re-entered: maskers do not detect), with one bound callback per detector. */
  private readonly hits: [number, number, Masker][] = [];
  private readonly found: ((start: number, end: number) => void)[];

  constructor(readonly uses: readonly DetectorUse[]) {
    this.found = uses.map((u) => (s: number, e: number) => void this.hits.push([s, e, u.masker]));
  }

  /**
   * `text` with every value found replaced by its masker's output (overlaps: the earliest, then the longest,
   * wins). undefined: nothing found. null: a value was found whose masker is `null`, so the whole value
   * becomes NULL. `json`: the text is JSON, and a value found outside a string literal (a number) is
   * replaced by a JSON string, so the document stays valid. `nullAs`: written instead where a masker says
   * NULL, for text that has no NULL of its own (a COPY row).
   */
  apply(text: string, json = false, nullAs?: string): string | null | undefined {
    const hits = this.hits;
    if (hits.length) hits.length = 0;
    for (let i = 0; i < this.uses.length; i++) this.uses[i]!.detector.scan(text, this.found[i]!);
    if (!hits.length) return undefined;
    if (hits.length > 1) hits.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    let out = '';
    let pos = 0;
    let scanned = 0;
    let inString = false;
    for (const [s, e, m] of hits) {
      if (s < pos) continue; // overlaps one already replaced
      const masked = m(text.slice(s, e)) ?? nullAs ?? null;
      if (masked === null) return null;
      let rep = masked;
      if (json) {
        inString = jsonStringState(text, scanned, s, inString);
        scanned = s;
        if (!inString) rep = JSON.stringify(masked);
      }
      out += text.slice(pos, s) + rep;
      pos = e;
    }
    return out + text.slice(pos);
  }
}
