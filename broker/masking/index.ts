// Masking: rules (which columns, which detectors, for whom), maskers (what a value becomes) and detectors
// (values found inside any text). Engine-agnostic; the wire work is in each engine
// (broker/engines/postgres/masking.ts and the files it uses).
export { BUILTIN_DETECTORS, Detection, luhn, patternProblem, type Detector } from './detectors.js';
export { loadHashKey, maskEmail, MASKERS, REDACTED, type Masker, type MaskerName } from './maskers.js';
export { MaskingPolicy, SessionMasking, type ColumnOrigin, type MaskingConfig, type MaskRuleConfig } from './rules.js';
