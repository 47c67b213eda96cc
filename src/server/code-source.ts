/**
 * Where client codes come from [P-12]: cryptographically random in production, a fixed sequence (handed out in turn)
 * for tests and demos.
 */
import { randomInt } from 'node:crypto';

export type CodeSource = () => number;

export const randomCodes: CodeSource = () => randomInt(100, 1000);

export function sequenceOfCodes(codes: readonly number[]): CodeSource {
  if (codes.length === 0) return randomCodes;
  let next = 0;
  return () => {
    const code = codes[next % codes.length] as number;
    next += 1;
    return code;
  };
}
