/**
 * Runs fuzz cases and turns the first failure into an error that names everything needed to replay it: the run's
 * seed, the case's index, and what the case fed in.
 */
import { caseSeed, type FuzzSettings, Random } from './random.ts';

/** A property that did not hold for one input. `input` describes the input (short, printable). */
export class PropertyViolation extends Error {
  readonly input: string;

  constructor(message: string, input: string) {
    super(message);
    this.name = 'PropertyViolation';
    this.input = input;
  }
}

/** A failed case, with its replay instructions in the message. */
export class FuzzFailure extends Error {
  readonly seed: number;
  readonly caseIndex: number;

  constructor(property: string, seed: number, caseIndex: number, cause: unknown) {
    const input = cause instanceof PropertyViolation ? `\n  input: ${cause.input}` : '';
    const what = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(
      `fuzz property "${property}" failed at case ${caseIndex} of seed ${seed}\n  ${what}${input}\n` +
        `  replay: FUZZ_SEED=${seed} FUZZ_CASE=${caseIndex}`,
      { cause },
    );
    this.name = 'FuzzFailure';
    this.seed = seed;
    this.caseIndex = caseIndex;
  }
}

export type Property = (random: Random) => void;
export type AsyncProperty = (random: Random, caseIndex: number) => Promise<void>;

/** The indexes a run covers: all of 0..count-1, or only the replayed one. */
export function caseIndexes(settings: FuzzSettings, count: number): number[] {
  if (settings.onlyCase !== null) return [settings.onlyCase];
  return Array.from({ length: count }, (_, index) => index);
}

/** Runs `count` cases of a synchronous property; throws a FuzzFailure at the first that fails. Returns the count run. */
export function runCases(name: string, property: Property, settings: FuzzSettings, count: number): number {
  const indexes = caseIndexes(settings, count);
  for (const index of indexes) {
    try {
      property(new Random(caseSeed(settings.seed, index)));
    } catch (error) {
      throw new FuzzFailure(name, settings.seed, index, error);
    }
  }
  return indexes.length;
}

/**
 * Runs the cases of an asynchronous property, at most `concurrency` at a time, in index order; throws a FuzzFailure
 * for the lowest-numbered case that failed. Returns the count run.
 */
export async function runCasesAsync(
  name: string,
  property: AsyncProperty,
  settings: FuzzSettings,
  count: number,
  concurrency = 1,
): Promise<number> {
  const indexes = caseIndexes(settings, count);
  const failures: Array<{ index: number; error: unknown }> = [];
  let next = 0;
  const worker = async () => {
    while (next < indexes.length && failures.length === 0) {
      const index = indexes[next++] as number;
      try {
        await property(new Random(caseSeed(settings.seed, index)), index);
      } catch (error) {
        failures.push({ index, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  const first = failures.sort((a, b) => a.index - b.index)[0];
  if (first) throw new FuzzFailure(name, settings.seed, first.index, first.error);
  return indexes.length;
}

/** A short printable form of some bytes for a failure message: hex, cut after `max` bytes. */
export function describeBytes(bytes: Uint8Array, max = 96): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, max)).toString('hex');
  return `${bytes.byteLength} bytes: ${hex}${bytes.byteLength > max ? '…' : ''}`;
}

/** A short printable form of a value for a failure message. */
export function describeValue(value: unknown, max = 300): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
