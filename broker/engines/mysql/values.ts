// The values of result rows as both protocols carry them: column types (MYSQL_TYPE_*) and the size of each
// binary-protocol value, for masking (masking.ts) and the result sample (sample.ts) alike.

/** MYSQL_TYPE_* values this engine tells apart. */
export const T = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  JSON: 0xf5,
  NEWDECIMAL: 0xf6,
  ENUM: 0xf7,
  SET: 0xf8,
  TINY_BLOB: 0xf9,
  MEDIUM_BLOB: 0xfa,
  LONG_BLOB: 0xfb,
  BLOB: 0xfc,
  VAR_STRING: 0xfd,
  STRING: 0xfe,
  GEOMETRY: 0xff,
} as const;

/** Types whose values are strings (length-encoded in both protocols) that maskers and detectors can read. */
export function isStringType(type: number): boolean {
  switch (type) {
    case T.VARCHAR:
    case T.JSON:
    case T.ENUM:
    case T.SET:
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB:
    case T.VAR_STRING:
    case T.STRING:
      return true;
    default:
      return false;
  }
}

/** Fixed size of a binary-protocol value of this type, 'len1' (one length byte, then that many: dates, times), or 'lenenc'. */
export function binarySize(type: number): number | 'len1' | 'lenenc' {
  switch (type) {
    case T.TINY:
      return 1;
    case T.SHORT:
    case T.YEAR:
      return 2;
    case T.LONG:
    case T.INT24:
    case T.FLOAT:
      return 4;
    case T.LONGLONG:
    case T.DOUBLE:
      return 8;
    case T.NULL:
      return 0;
    case T.DATE:
    case T.DATETIME:
    case T.TIMESTAMP:
    case T.NEWDATE:
    case T.TIMESTAMP2:
    case T.DATETIME2:
    case T.TIME:
    case T.TIME2:
      return 'len1';
    default:
      return 'lenenc'; // DECIMAL, NEWDECIMAL, BIT, strings, blobs, JSON, ENUM, SET, GEOMETRY
  }
}
