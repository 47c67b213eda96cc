/**
 * The bench's perf profile: `perf report`'s text (an excerpt of one captured while imgcache served 4 KiB at C=64,
 * node started with --perf-basic-prof; the paths shortened) parsed into samples and summed by area of the program.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  areaOf,
  parseFirstSampleSeconds,
  parsePerfReport,
  parseSamplesByThread,
  summarizePerfReport,
} from '../bench/perf-profile.ts';

const BY_SYMBOL = `# To display the perf.data header info, please use --header/--header-only options.
#
#
# Total Lost Samples: 0
#
# Samples: 2K of event 'cpu-clock' (time slices: 26300.100000,26302.100000)
# Event count (approx.): 2000000000
#
# Overhead       Samples  Shared Object        Symbol
# ........  ............  ...................  ......
#
    50.00%          1000  [kernel.kallsyms]    [k] finish_task_switch.isra.0
    10.00%           200  node                 [.] v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>
     5.00%           100  node                 [.] v8::internal::MarkingVisitorBase<v8::internal::ConcurrentMarkingVisitor, v8::internal::ConcurrentMarkingState>::ProcessStrongHeapObject<v8::internal::FullHeapObjectSlot>
     8.00%           160  node                 [.] Builtins_SetDataProperties
     2.00%            40  node                 [.] v8::internal::HeapObject::SizeFromMap
     6.00%           120  [JIT] tid 22584      [.] JS:*macrostep /srv/imgcache/node_modules/xstate/dist/raise-9de11213.cjs.js:2452:19
     4.00%            80  [JIT] tid 22584      [.] JS:*callDones file:///srv/imgcache/dist/db/event-log.js:431:19
     3.00%            60  [JIT] tid 22584      [.] JS:*#carryOut file:///srv/imgcache/dist/src/server/connection.js:636:14
     2.00%            40  [JIT] tid 22584      [.] JS:*decode file:///srv/imgcache/dist/src/protocol/frame-codec.js:40:9
     2.00%            40  [JIT] tid 22584      [.] JS:*clearBuffer node:internal/streams/writable:744:21
     1.00%            20  [JIT] tid 22584      [.] Builtin:ArgumentsAdaptorTrampoline
     3.00%            60  better_sqlite3.node  [.] sqlite3VdbeExec
     2.00%            40  libc.so.6            [.] __memmove_avx512_unaligned_erms
     1.00%            20  [vdso]               [.] __vdso_clock_gettime
     1.00%            20  [unknown]            [.] 0x00007f120f7c6067


#
# (Tip: For a higher level overview, try: perf report --sort comm,dso)
#
`;

test('each line of the report becomes an object, a symbol and its samples; the event count is the CPU time', () => {
  const report = parsePerfReport(BY_SYMBOL);
  assert.is(report.entries.length, 15);
  assert.is(report.eventCount, 2_000_000_000);
  assert.equal(report.entries[0], { dso: '[kernel.kallsyms]', symbol: 'finish_task_switch.isra.0', samples: 1000 });
  assert.equal(report.entries[5], {
    dso: '[JIT] tid 22584',
    symbol: 'JS:*macrostep /srv/imgcache/node_modules/xstate/dist/raise-9de11213.cjs.js:2452:19',
    samples: 120,
  });
  assert.ok(report.entries[2]?.symbol.includes('ConcurrentMarkingVisitor, v8::internal::ConcurrentMarkingState'));
});

test('areas: kernel, V8 garbage collection apart from the rest of the node binary, JS by file, SQLite, libc', () => {
  const areas = parsePerfReport(BY_SYMBOL).entries.map(areaOf);
  assert.equal(areas, [
    'kernel',
    'V8 garbage collection',
    'V8 garbage collection',
    'node binary: builtins and runtime',
    // HeapObject is not the Heap: reading an object's size is not collecting garbage
    'node binary: builtins and runtime',
    'JS: xstate',
    'JS: db',
    'JS: src/server',
    'JS: src/protocol',
    'JS: node core',
    'JIT: V8 stubs and handlers',
    'better-sqlite3 / SQLite',
    'libc and system libraries',
    'kernel',
    'unknown',
  ]);
});

test('JS in a checkout under a folder named src is still placed by its own folders', () => {
  const entry = {
    dso: '[JIT] tid 1',
    symbol: 'JS:*f file:///home/me/src/imgcache/dist/src/protocol/frame-codec.js:1:1',
  };
  assert.is(areaOf(entry), 'JS: src/protocol');
});

test('the summary: shares of all the samples, areas largest first, top symbols with short paths and one JIT object', () => {
  const summary = summarizePerfReport(parsePerfReport(BY_SYMBOL), {
    command: 'perf record -e cpu-clock -F 999 -p PID',
    mainThreadShare: 0.82,
    lateStartMs: 0,
    topCount: 6,
  });
  assert.is(summary.profiler, 'perf');
  assert.is(summary.samples, 2000);
  assert.is(summary.cpuMs, 2000);
  assert.equal(summary.areas[0], { area: 'kernel', samples: 1020, share: 0.51 });
  assert.equal(summary.areas[1], { area: 'V8 garbage collection', samples: 300, share: 0.15 });
  assert.equal(summary.areas[2], { area: 'node binary: builtins and runtime', samples: 200, share: 0.1 });
  const shares = summary.areas.reduce((sum, area) => sum + area.share, 0);
  assert.ok(Math.abs(shares - 1) < 1e-9);
  assert.is(summary.top.length, 6);
  assert.equal(summary.top[3], {
    name: 'JS:*macrostep xstate/dist/raise-9de11213.cjs.js:2452:19',
    dso: '[JIT]',
    area: 'JS: xstate',
    samples: 120,
    share: 0.06,
  });
  assert.is(summary.top[5]?.name, 'JS:*callDones db/event-log.js:431:19');
  assert.ok(summary.top.every((symbol) => !symbol.name.includes('/srv/')));
});

test('samples by thread: the main thread has the process id', () => {
  const threads = parseSamplesByThread(`# Overhead       Samples  Pid:Command
# ........  ............  ...........
#
    82.28%          1825    22584:node
     4.87%           108    22586:node
     4.37%            97    22588:node
`);
  assert.equal(
    [...threads.entries()],
    [
      [22584, 1825],
      [22586, 108],
      [22588, 97],
    ],
  );
});

test('the first sample time from the header; none when the header has no such line', () => {
  const header = '# time of first sample : 26232.656813\n# time of last sample : 26234.067854\n';
  assert.is(parseFirstSampleSeconds(header), 26232.656813);
  assert.is(parseFirstSampleSeconds('# hostname : x\n'), null);
});

test('an empty report: no samples, no areas', () => {
  const summary = summarizePerfReport(parsePerfReport('# nothing\n'), {
    command: 'perf record',
    mainThreadShare: 0,
    lateStartMs: 0,
  });
  assert.is(summary.samples, 0);
  assert.equal(summary.areas, []);
  assert.equal(summary.top, []);
});

test.run();
