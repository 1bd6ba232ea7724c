/**
 * Parsers for numeric command-line values, shared by every command: each returns a commander
 * option parser that throws a one-line UserError naming the flag and the value it got.
 */
import { UserError } from '../errors.ts';

export type ArgParser = (v: string) => number;

function integerArg(flag: string, min: number, wanted: string): ArgParser {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UserError(`${flag}: expected ${wanted}, got "${v}"`);
    return n;
  };
}

/** 0, 1, 2, ... (seeds; threads, where 0 means all cores). */
export const nonNegativeIntArg = (flag: string): ArgParser => integerArg(flag, 0, 'a non-negative integer');

/** 1, 2, 3, ... */
export const positiveIntArg = (flag: string): ArgParser => integerArg(flag, 1, 'a positive integer');

/** An integer no smaller than `min`. */
export const intAtLeastArg = (flag: string, min: number): ArgParser => integerArg(flag, min, `an integer >= ${min}`);

/** A finite number > 0. */
export function positiveNumberArg(flag: string): ArgParser {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UserError(`${flag}: expected a positive number, got "${v}"`);
    return n;
  };
}

/** A number in an interval; each end open or closed. */
export function numberInArg(flag: string, lo: number, hi: number, loOpen: boolean, hiOpen: boolean): ArgParser {
  return (v) => {
    const n = Number(v);
    const ok = Number.isFinite(n) && (loOpen ? n > lo : n >= lo) && (hiOpen ? n < hi : n <= hi);
    if (v.trim() === '' || !ok)
      throw new UserError(`${flag}: expected a number in ${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'}, got "${v}"`);
    return n;
  };
}
