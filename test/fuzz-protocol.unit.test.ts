/**
 * A bounded fuzz of the frame decoder and the message parsers (properties in test/fuzz/). The seed is random on
 * each run and printed in any failure; FUZZ_SEED replays a run, FUZZ_SEED with FUZZ_CASE replays one case. The long
 * run is `npm run fuzz`.
 */
import { test } from 'uvu';
import { decoderMatchesReference, validFramesRoundTrip } from './fuzz/frame-fuzz.ts';
import { parsersThrowOnlyCodedErrors, validMessagesRoundTrip } from './fuzz/message-fuzz.ts';
import { fuzzSettings } from './fuzz/random.ts';
import { runCases } from './fuzz/run-cases.ts';

const settings = fuzzSettings();

test('[P-2] [P-3] fuzz: any bytes in any chunks give the reference frames, only coded errors, bounded buffering', () => {
  runCases('decoder matches the reference', decoderMatchesReference, settings, 2_000);
});

test('[P-2] fuzz: valid frames round-trip through every encoder and any chunking', () => {
  runCases('valid frames round-trip', validFramesRoundTrip, settings, 500);
});

test('[P-5] [P-11] [P-15] [P-26] fuzz: the parsers throw nothing but their documented coded errors', () => {
  runCases('parsers throw only coded errors', parsersThrowOnlyCodedErrors, settings, 3_000);
});

test('[P-5] [P-6] fuzz: valid messages with unknown fields round-trip through frame and parser', () => {
  runCases('valid messages round-trip', validMessagesRoundTrip, settings, 1_000);
});

test.run();
