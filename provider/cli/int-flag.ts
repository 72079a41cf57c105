import { UserError } from "../core/errors";

/**
 * A commander parser for a whole-number flag: `abc`, `-1`, `1e23` or `2.5` are refused naming the
 * flag, instead of becoming NaN or being clamped somewhere later.
 */
export function intFlag(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new UserError(`${flag}: "${value}" must be a whole number from ${min} to ${max}`);
    return n;
  };
}
