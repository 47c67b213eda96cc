/**
 * The results as a markdown page: the summary table first, then the detail of every run, the calibration, the
 * history, admission and the CPU profile, and the targets. Pure: results in, text out.
 */
import {
  type BenchResults,
  historyBaselineTarget,
  historyCeilingTarget,
  RSS_VERSUS_BASELINE,
  SMALL_YOUNG_GENERATION,
} from './bench-results.ts';
import {
  type ClientSpeed,
  DEFAULT_FREE_REQUEST_BURST,
  DEFAULT_FREE_REQUESTS_PER_SECOND,
  type TimedCommand,
} from './client-speed.ts';
import { clusterSection } from './cluster-report.ts';
import type { ServerRun } from './measure-run.ts';
import type { PerfProfileSummary } from './perf-profile.ts';
import type { SoakResult } from './session-soak.ts';
import type { UsageLatency } from './usage-latency.ts';

const MIB = 1024 * 1024;

const rate = (value: number) => Math.round(value).toLocaleString('en-US');
const ms = (value: number) => (value < 10 ? value.toFixed(2) : value.toFixed(1));
const mib = (bytes: number) => (bytes / MIB).toFixed(0);
const ratio = (value: number | null) => (value === null ? '–' : `${value.toFixed(2)}`);
const mark = (met: boolean | null) => (met === null ? '–' : met ? 'yes' : '**no**');

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function renderMarkdown(results: BenchResults): string {
  const { machine, code, settings } = results;
  const sections: string[] = [];
  sections.push(`# imgcache benchmark, ${results.date}${results.mode === 'smoke' ? ' (smoke run)' : ''}`);
  sections.push(
    [
      `- machine: ${machine.cpus} × ${machine.cpuModel}, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${machine.kernel}; load average at start ${machine.loadAverage.join(' / ')}`,
      `- software: Node ${machine.node}, ${machine.nginx ?? 'no nginx'}, ${machine.wrk ?? 'no wrk'}`,
      `- code: commit ${code.commit}${describeUncommitted(code.uncommitted)}`,
      `- history sync: \`${results.historySync}\` for imgcache, the baseline + history and the common way (IMGCACHE_HISTORY_SYNC; imgcache's default is \`normal\`)`,
      `- each measurement: ${settings.warmupMs / 1000} s warm-up, then ${settings.durationMs / 1000} s measured, the whole matrix ${settings.rounds} time(s), each server's best round kept (repeated, at most ${settings.disturbedRepeats} time(s), while other work used over 0.25 cores); load generator: ${settings.threads} thread(s), one request in flight per client; imgcache started fresh per measurement with \`--capacity C\`, a \`--tiers\` table of quota 10^9, \`--log-level warn\`; whole run ${results.seconds.toFixed(0)} s`,
    ].join('\n'),
  );

  sections.push('## Requests per second');
  sections.push(
    table(
      [
        'size',
        'C',
        'imgcache',
        'baseline',
        'baseline + history',
        'common way',
        'nginx (best)',
        'imgcache / (baseline + history)',
        '(baseline + history) / baseline',
        'imgcache / baseline',
        'imgcache / common way',
        'imgcache / nginx',
        'peak RSS imgcache / baseline',
      ],
      results.rows.map((row) => [
        row.label,
        String(row.connections),
        rate(row.imgcache.requestsPerSecond),
        rate(row.baseline.requestsPerSecond),
        rate(row.baselineWithHistory.requestsPerSecond),
        rate(row.commonWay.requestsPerSecond),
        row.bestNginx
          ? `${rate(row.bestNginx.requestsPerSecond)} (${row.bestNginx.server.replace('nginx: ', '')})`
          : '–',
        ratio(row.versusBaselineWithHistory),
        ratio(row.historyCeiling),
        ratio(row.versusBaseline),
        ratio(row.versusCommonWay),
        ratio(row.versusNginx),
        ratio(row.rssVersusBaseline),
      ]),
    ),
  );
  sections.push(
    "'baseline + history' is the baseline doing the one part of imgcache's work that the design fixes for every answer: " +
      "it commits an `image-served` event of imgcache's shape to a history of imgcache's schema, through imgcache's " +
      'group commit and with the same `--history-sync`, before it writes the answer. Its ratio to the baseline is the ' +
      'highest imgcache / baseline that any imgcache can reach while it commits each event before its reply. ' +
      "'common way' is what a Node developer would write for the job (bench/common-way-server.ts): Fastify, the same " +
      'event recorded with a plain better-sqlite3 `INSERT` (WAL, the same `synchronous`) before @fastify/static sends ' +
      'the file, over HTTP keep-alive, driven by the same generator. It is a reference, not a target.',
  );

  sections.push(...designFloorSection(results));

  sections.push('## Every run');
  const runs = results.rows.flatMap((row) =>
    [row.imgcache, row.baseline, row.baselineWithHistory, row.designFloor, row.commonWay, ...row.nginx].map((run) => ({
      row,
      run,
    })),
  );
  sections.push(
    table(
      [
        'size',
        'C',
        'server',
        'req/s',
        'MB/s',
        'p50 ms',
        'p99 ms',
        'server CPU µs/req',
        'server cores',
        'server peak RSS MiB',
        'events/s',
        'generator cores',
        'other cores',
        'errors',
        'req/s of each round',
      ],
      runs.map(({ row, run }) => runCells(row.label, run)),
    ),
  );
  sections.push(
    'server CPU is utime+stime from /proc (all threads; nginx: master and workers) over the window, divided by the answers; ' +
      'peak RSS is VmHWM (nginx: the sum over its processes, which live for the whole bench); events/s is the growth of ' +
      "the history during the window; 'other cores' is the CPU the rest of the machine used meanwhile: other programs " +
      '(noise), and kernel threads working for the run (softirq, the file system journal behind fsync).',
  );

  if (results.calibration.length > 0) {
    sections.push('## Calibration of the load generator against wrk');
    sections.push(
      table(
        ['nginx', 'size', 'C', 'ours req/s', 'wrk req/s', 'ours / wrk', 'wrk req/s of each round'],
        results.calibration.map((entry) => [
          entry.nginx,
          `${entry.imageBytes / 1024} KiB`,
          String(entry.connections),
          rate(entry.oursRequestsPerSecond),
          rate(entry.wrk.requestsPerSecond),
          entry.ratio.toFixed(2),
          (entry.wrk.rounds ?? [entry.wrk.requestsPerSecond]).map(rate).join(' / '),
        ]),
      ),
    );
    sections.push(
      `wrk command: \`${results.calibration[0]?.wrk.command.replace(/http:\/\/\S+/, 'URL')}\`, run right after our run against the same nginx in every round; the best round of each counts. ` +
        'Our generator is one thread: against 2 nginx workers on a 2-core machine it shares the cores with both, where wrk runs 2 threads. ' +
        'What guards the ratios is the check on the faster nginx of each row (see the targets).',
    );
  }

  if (results.logCost) {
    const same = results.rows.find(
      (row) => row.imageBytes === results.logCost?.imageBytes && row.connections === results.logCost?.connections,
    );
    sections.push('## The operator log at `info`');
    sections.push(
      `imgcache with \`--log-level info\` (one JSON line per event, to a file), ${results.logCost.imageBytes / 1024} KiB, C=${results.logCost.connections}: ` +
        `${rate(results.logCost.requestsPerSecond)} req/s, ${results.logCost.serverCpuMicrosPerRequest.toFixed(1)} µs CPU/req` +
        (same
          ? ` (at \`warn\`: ${rate(same.imgcache.requestsPerSecond)} req/s, ${same.imgcache.serverCpuMicrosPerRequest.toFixed(1)} µs CPU/req).`
          : '.'),
    );
  }

  if (results.smallYoungGeneration) sections.push(...smallYoungGenerationSection(results));

  sections.push('## Event log');
  sections.push(
    `While serving: up to ${rate(Math.max(0, ...results.rows.map((row) => row.imgcache.eventsPerSecond ?? 0)))} events/s sustained (the events/s column above). ` +
      `On its own (in-process, \`--history-sync ${results.historySync}\` as the server runs, group commit of the records of one event-loop turn, each caller waiting for its commit):`,
  );
  sections.push(
    table(
      ['records per turn', 'events/s', 'commits/s'],
      results.eventLogCapacity.map((entry) => [
        String(entry.callers),
        rate(entry.eventsPerSecond),
        rate(entry.commitsPerSecond),
      ]),
    ),
  );

  const { history } = results;
  sections.push(`## Usage export of ${history.build.events.toLocaleString('en-US')} events`);
  sections.push(
    `History built with EventLog.recordNow in batches of 10,000: ${history.build.sessions.toLocaleString('en-US')} sessions, ` +
      `${mib(history.build.fileBytes)} MiB, in ${history.build.seconds.toFixed(1)} s. ` +
      `\`${history.export.command}\`: **${history.export.seconds.toFixed(2)} s** (process start included), ` +
      `**peak RSS ${mib(history.export.peakRssBytes)} MiB**.`,
  );

  const { usageLatency } = results;
  sections.push(`## Another client's list while usages stream`);
  sections.push(
    `A history of ${usageLatency.historyEvents.toLocaleString('en-US')} events; one client reads the whole usage ` +
      `document (${mib(usageLatency.documentBytes)} MiB) again and again (${usageLatency.usages} usages, ` +
      `${usageLatency.usageSecondsMedian.toFixed(2)} s each at the median, ${usageLatency.usageSecondsMax.toFixed(2)} s ` +
      'at most) while another sends `list` requests back to back; the same lists with no usage running beside them. ' +
      'The reader is a process of its own (bench/usage-reader.ts); the first usage also builds the usage cache.',
  );
  sections.push(
    table(
      ['lists', 'count', 'p50', 'p99', 'max'],
      [
        ['with no usage', usageLatency.listIdle],
        ['while usages stream', usageLatency.listDuringUsage],
      ].map(([label, summary]) => {
        const figures = summary as UsageLatency['listIdle'];
        return [
          label as string,
          String(figures.count),
          `${figures.p50Ms.toFixed(2)} ms`,
          `${figures.p99Ms.toFixed(2)} ms`,
          `${figures.maxMs.toFixed(1)} ms`,
        ];
      }),
    ),
  );

  sections.push('## History growth under a flood of free requests');
  sections.push(
    'One client with the default budget (a burst of 100, then 20 a second) sends requests that cost no quota as ' +
      'fast as it can, 16 in flight, then the history is checkpointed and its file size read.',
  );
  sections.push(
    table(
      ['flood of', 'seconds', 'answers/s', 'rate-limited', 'rows added', 'history growth'],
      results.freeRequestFlood.map((run) => [
        run.kind,
        run.seconds.toFixed(1),
        String(Math.round(run.answersPerSecond)),
        String(run.rateLimited),
        String(run.rows),
        `${(run.bytesPerHour / MIB).toFixed(2)} MiB an hour`,
      ]),
    ),
  );

  const { inProcess, overSockets } = results.admission;
  sections.push('## Admission');
  sections.push(
    table(
      ['how', 'sessions', 'total', 'µs/session near 100 open', 'µs/session near all open', 'memory per session'],
      [
        [
          'in-process: admission actor, CONNECT + HELLO until WELCOME, no I/O',
          inProcess.sessions.toLocaleString('en-US'),
          `${inProcess.totalSeconds.toFixed(2)} s`,
          inProcess.figures.microsNear100Open.toFixed(0),
          inProcess.figures.microsNearFull.toFixed(0),
          `${(inProcess.heapBytesPerSession / 1024).toFixed(1)} KiB heap`,
        ],
        [
          'over sockets: real server, batches of connect + HELLO until WELCOME (event committed)',
          overSockets.sessions.toLocaleString('en-US'),
          `${overSockets.totalSeconds.toFixed(2)} s`,
          overSockets.figures.microsNear100Open.toFixed(0),
          overSockets.figures.microsNearFull.toFixed(0),
          `${(overSockets.serverRssBytesPerSession / 1024).toFixed(1)} KiB server RSS`,
        ],
      ],
    ),
  );
  sections.push(
    `Batches of ${settings.admissionBatch}; every session stays open. Over sockets the time per session is a batch's wall time divided by its size (the batch is concurrent).`,
  );

  if (results.soak) sections.push(...soakSections(results.soak));

  const { startup } = results;
  sections.push('## Start-up: one CLI command, fork to exit');
  sections.push(
    `Wall time of one command run by a shell, against a server on 127.0.0.1 (each \`imgcache list\` is a whole session: ` +
      `connect, HELLO, list, goodbye); after one warm-up run. The commands run the JavaScript \`npm install\` compiled ` +
      `into dist/${startup.compiled ? '' : ' (absent in this run: they ran the sources)'}; "through tsx" is what each ` +
      `start paid before. redis-cli: ${startup.redis}.`,
  );
  sections.push(
    table(
      ['what', 'command', 'runs', 'median ms', 'min ms', 'max ms'],
      startup.rows.map((row) => [
        row.what,
        `\`${row.command}\``,
        String(row.runs),
        row.medianMs.toFixed(1),
        row.minMs.toFixed(1),
        row.maxMs.toFixed(1),
      ]),
    ),
  );

  if (results.clientSpeed) sections.push(...clientSpeedSections(results.clientSpeed));

  if (results.profile) sections.push(...profileSections(results.profile));

  sections.push(...clusterSection(results.cluster));

  const misses = results.targets.filter((check) => check.met === false);
  sections.push('## Targets');
  if (misses.length > 0) sections.push(describeMisses(results));
  sections.push(
    table(
      ['target', 'measured', 'met'],
      results.targets.map((check) => [check.target, check.measured, mark(check.met)]),
    ),
  );
  return `${sections.join('\n\n')}\n`;
}

/**
 * The two pieces of work the design fixes per answer, together: what the history and the session machine leave
 * any imgcache, and how close this one comes.
 */
function designFloorSection(results: BenchResults): string[] {
  const cpu = (run: ServerRun) => run.serverCpuMicrosPerRequest.toFixed(1);
  return [
    '## What the design leaves: the history and the session machine',
    table(
      [
        'size',
        'C',
        'imgcache',
        'baseline + history',
        'baseline + history + session machine',
        '(… + session machine) / (baseline + history)',
        'imgcache / (… + session machine)',
        'server CPU µs/req: imgcache / … + session machine / baseline + history / baseline',
        'peak RSS MiB: imgcache / … + session machine / baseline',
      ],
      results.rows.map((row) => [
        row.label,
        String(row.connections),
        rate(row.imgcache.requestsPerSecond),
        rate(row.baselineWithHistory.requestsPerSecond),
        rate(row.designFloor.requestsPerSecond),
        ratio(row.machineCeiling),
        ratio(row.versusDesignFloor),
        [row.imgcache, row.designFloor, row.baselineWithHistory, row.baseline].map(cpu).join(' / '),
        [row.imgcache, row.designFloor, row.baseline].map((run) => mib(run.serverPeakRssBytes)).join(' / '),
      ]),
    ),
    "'baseline + history + session machine' is the baseline + history doing, besides, the other piece of work the " +
      "design fixes for every answer: each connection is a session of imgcache's own machine " +
      '(machines/session.machine.ts, XState), and each answer is the two steps imgcache takes for a get, the REQUEST ' +
      'that decides to serve and count it before the event is recorded, and the REPLY_SENT once it is written ' +
      '(bench/bare-server.ts `--session-machine`). Its ratio to the baseline + history is the highest ' +
      'imgcache / (baseline + history) that any imgcache can reach while every request is a step of its session ' +
      "machine; what imgcache spends beyond it is its own (the protocol's JSON, the catalog, receipts, quotas and " +
      'the rest of the socket glue).',
  ];
}

/** imgcache with V8's young generation held small, beside imgcache as it starts by default, row by row. */
function smallYoungGenerationSection(results: BenchResults): string[] {
  const runs = results.smallYoungGeneration ?? [];
  return [
    "## Peak memory with V8's young generation held small",
    `imgcache started with \`${SMALL_YOUNG_GENERATION}\` (as an operator would: \`NODE_OPTIONS=${SMALL_YOUNG_GENERATION} npm start\`), ` +
      'measured once in every row right after the matrix, beside imgcache as it starts by default (the best round of the matrix):',
    table(
      [
        'size',
        'C',
        'req/s: default / small young generation',
        'server CPU µs/req: default / small',
        'peak RSS MiB: default / small / baseline',
        'peak RSS / baseline: default / small',
      ],
      results.rows.flatMap((row) => {
        const small = runs.find(
          (entry) => entry.imageBytes === row.imageBytes && entry.connections === row.connections,
        );
        if (!small) return [];
        const baselineRss = row.baseline.serverPeakRssBytes;
        return [
          [
            row.label,
            String(row.connections),
            `${rate(row.imgcache.requestsPerSecond)} / ${rate(small.run.requestsPerSecond)}`,
            `${row.imgcache.serverCpuMicrosPerRequest.toFixed(1)} / ${small.run.serverCpuMicrosPerRequest.toFixed(1)}`,
            `${mib(row.imgcache.serverPeakRssBytes)} / ${mib(small.run.serverPeakRssBytes)} / ${mib(baselineRss)}`,
            `${ratio(row.imgcache.serverPeakRssBytes / baselineRss)} / ${ratio(small.run.serverPeakRssBytes / baselineRss)}`,
          ],
        ];
      }),
    ),
  ];
}

/** The CPU profile of imgcache: perf's (CPU time of every thread) when perf worked, else V8's (main thread). */
function profileSections(profile: NonNullable<BenchResults['profile']>): string[] {
  const { run, summary } = profile;
  const heading = `## CPU profile of imgcache, ${run.imageBytes / 1024} KiB, C=${run.connections}`;
  if (summary.profiler === 'perf') return [heading, ...perfProfileSections(run, summary)];
  const whyNotPerf = summary.perfUnavailable ? ` (not perf: ${summary.perfUnavailable})` : '';
  return [
    heading,
    `\`node --cpu-prof\` on the server's main thread${whyNotPerf}, the samples of the measured window: ${rate(run.requestsPerSecond)} req/s while profiled; ` +
      `${(summary.totalMs / 1000).toFixed(1)} s sampled, ${((summary.idleMs / summary.totalMs) * 100).toFixed(0)}% idle. Shares are of the non-idle time; a native function (no file) is shown with its caller. ` +
      'V8 samples the wall time of the main thread, not its CPU time: a thread preempted inside a system call is charged to that call.',
    table(
      ['self %', 'self ms', 'function', 'called from'],
      summary.top.map((entry) => [
        (entry.share * 100).toFixed(1),
        entry.selfMs.toFixed(0),
        `\`${entry.name}\``,
        entry.caller ? `\`${entry.caller}\`` : '',
      ]),
    ),
    table(
      ['area', 'self %'],
      summary.areas.filter((area) => area.share >= 0.005).map((area) => [area.area, (area.share * 100).toFixed(1)]),
    ),
  ];
}

function perfProfileSections(run: ServerRun, summary: PerfProfileSummary): string[] {
  const perRequest = run.requests === 0 ? 0 : (summary.cpuMs * 1000) / run.requests;
  const late =
    summary.lateStartMs > 0 ? ` perf's first sample came ${summary.lateStartMs.toFixed(0)} ms into the window.` : '';
  return [
    `\`${summary.command}\` (node started with \`--perf-basic-prof\`, so JIT frames have names), the samples of the ` +
      `measured window: ${rate(run.requestsPerSecond)} req/s while profiled; ${summary.samples.toLocaleString('en-US')} samples, ` +
      `${(summary.cpuMs / 1000).toFixed(2)} s of CPU, ${perRequest.toFixed(1)} µs per request ` +
      `(/proc: ${run.serverCpuMicrosPerRequest.toFixed(1)} µs); ${(summary.mainThreadShare * 100).toFixed(0)}% of the samples on the main thread.${late} ` +
      "Shares are of the CPU time of the server's threads as perf saw it, sampled on cpu-clock: a thread waiting for a " +
      "core is not sampled. JS areas are JIT-compiled code by file; the node binary holds V8's builtins, runtime and " +
      'GC, and libuv.',
    table(
      ['area', 'CPU %'],
      summary.areas.filter((area) => area.share >= 0.005).map((area) => [area.area, (area.share * 100).toFixed(1)]),
    ),
    table(
      ['CPU %', 'samples', 'symbol', 'object', 'area'],
      summary.top.map((symbol) => [
        (symbol.share * 100).toFixed(1),
        String(symbol.samples),
        `\`${symbol.name.replaceAll('|', '\\|')}\``,
        `\`${symbol.dso}\``,
        symbol.area,
      ]),
    ),
  ];
}

/** The closing note: by how much imgcache misses, and where the profile says its time goes. */
function describeMisses(results: BenchResults): string {
  const lines: string[] = [];
  const largest = results.rows.find((row) => row.imageBytes === 4 * MIB && row.connections === 3);
  if (largest?.versusNginx != null && largest.versusNginx < 1) {
    lines.push(`- behind the best nginx at 4 MiB C=3: ${largest.versusNginx.toFixed(2)}×`);
  }
  const behindHistory = results.rows.filter(
    (row) => row.versusBaselineWithHistory < historyBaselineTarget(row.imageBytes),
  );
  if (behindHistory.length > 0) {
    lines.push(
      `- under the target share of (baseline + history) at ${behindHistory.length} of ${results.rows.length} rows: ` +
        behindHistory
          .map(
            (row) =>
              `${row.label} C=${row.connections} ${row.versusBaselineWithHistory.toFixed(2)}× (needs ` +
              `${(historyBaselineTarget(row.imageBytes) / row.versusBaselineWithHistory).toFixed(2)}× more)`,
          )
          .join(', '),
    );
  }
  const outOfReach = behindHistory.filter((row) => row.machineCeiling < historyBaselineTarget(row.imageBytes));
  if (outOfReach.length > 0) {
    lines.push(
      `- where the target share of (baseline + history) is more than the history and the session machine together ` +
        `leave any imgcache ((… + session machine) / (baseline + history)): ` +
        outOfReach
          .map(
            (row) =>
              `${row.label} C=${row.connections} ${row.machineCeiling.toFixed(2)}× ` +
              `(target ${historyBaselineTarget(row.imageBytes)}; imgcache is at ${row.versusDesignFloor.toFixed(2)}× of it)`,
          )
          .join(', '),
    );
  }
  const lowCeiling = results.rows.filter((row) => {
    const wanted = historyCeilingTarget(row.imageBytes, row.connections);
    return wanted !== null && row.historyCeiling < wanted;
  });
  if (lowCeiling.length > 0) {
    lines.push(
      `- where committing each event alone costs more than the target allows ((baseline + history) / baseline): ` +
        lowCeiling
          .map(
            (row) =>
              `${row.label} C=${row.connections} ${row.historyCeiling.toFixed(2)}× ` +
              `(target ${historyCeilingTarget(row.imageBytes, row.connections)})`,
          )
          .join(', '),
    );
  }
  const heavy = results.rows.filter((row) => row.rssVersusBaseline > RSS_VERSUS_BASELINE);
  if (heavy.length > 0) {
    lines.push(
      `- peak RSS over ${RSS_VERSUS_BASELINE} × the baseline's at ${heavy.length} of ${results.rows.length} rows: ` +
        heavy
          .map((row) => {
            const floor = row.designFloor.serverPeakRssBytes / row.baseline.serverPeakRssBytes;
            return `${row.label} C=${row.connections} ${row.rssVersusBaseline.toFixed(2)}× (baseline + history + session machine: ${floor.toFixed(2)}×)`;
          })
          .join(', '),
    );
  }
  const download = results.clientSpeed?.large;
  if (download?.ratio != null && download.ratio < 0.8) {
    lines.push(
      `- the client's \`get\` of ${download.label}: ${download.ratio.toFixed(2)}× curl's speed ` +
        `(${download.imgcache.bestSeconds.toFixed(2)} s against ${download.curl?.bestSeconds.toFixed(2)} s)`,
    );
  }
  const cpu = results.rows.map(
    (row) =>
      `${row.label} C=${row.connections}: ${row.imgcache.serverCpuMicrosPerRequest.toFixed(0)} vs ${row.baselineWithHistory.serverCpuMicrosPerRequest.toFixed(0)} vs ${row.baseline.serverCpuMicrosPerRequest.toFixed(0)} µs`,
  );
  lines.push(`- server CPU per request, imgcache vs baseline + history vs baseline: ${cpu.join('; ')}`);
  if (results.profile) {
    const areas = results.profile.summary.areas
      .slice(0, 5)
      .map((area) => `${area.area} ${(area.share * 100).toFixed(0)}%`)
      .join(', ');
    const top = results.profile.summary.top
      .slice(0, 5)
      .map((entry) => `\`${entry.name.replace(/ \S*\/\S*$/, '')}\` ${(entry.share * 100).toFixed(0)}%`)
      .join(', ');
    lines.push(`- the CPU profile: by area ${areas}; top functions ${top}`);
  }
  return lines.join('\n');
}

/** The client's download speed beside curl's, and its pipelined runs beside one request at a time. */
function clientSpeedSections(speed: ClientSpeed): string[] {
  const { large } = speed;
  const refreshed = speed.pipelines.find((run) => run.command === 'refresh')?.images ?? 0;
  const seconds = (timing: TimedCommand) => timing.seconds.map((value) => value.toFixed(3)).join(' / ');
  const downloads = [
    ['imgcache get (a session: HELLO, get, hash checked, temporary file renamed)', large.imgcache],
    ...(large.curl ? [[`curl -o from nginx (${large.curl.nginx})`, large.curl] as const] : []),
  ] as const;
  return [
    '## The client: one large image, and many images pipelined',
    `The real CLI (${speed.compiled ? 'compiled, dist/' : 'no dist/: its sources through tsx'}) against a fresh imgcache on 127.0.0.1, ` +
      'wall time from fork to exit; the two sides alternate and each keeps its fastest run. ' +
      `${large.label} of random bytes into an empty cache folder, beside \`curl -o\` of the same file from nginx ` +
      '(each setup of the bench; the faster counts):',
    table(
      ['what', 'command', 'best s', 'MB/s', 's of each run'],
      downloads.map(([what, timing]) => [
        what,
        `\`${timing.command}\``,
        timing.bestSeconds.toFixed(3),
        timing.megabytesPerSecond.toFixed(0),
        seconds(timing),
      ]),
    ),
    large.ratio === null
      ? 'curl was not measured (no nginx in this run, or no curl installed).'
      : `imgcache / curl: **${large.ratio.toFixed(2)}×** (target ≥ 0.8).`,
    'Many small images (4 KiB each) in one session, pipelined (the CLI keeps several requests in flight, [P-16]) ' +
      'against one request at a time; images per second of wall time, the process start included. A not-modified ' +
      `revalidation costs no quota and takes from the session's free-request budget ([P-48]): this server holds a burst of ` +
      `${speed.freeRequestBurst.toLocaleString('en-US')}, so that what is timed is the client. With the default budget ` +
      `(a burst of ${DEFAULT_FREE_REQUEST_BURST}, then ${DEFAULT_FREE_REQUESTS_PER_SECOND} a second) a refresh of ` +
      `${refreshed.toLocaleString('en-US')} images would wait at least ` +
      `${(Math.max(0, refreshed - DEFAULT_FREE_REQUEST_BURST) / DEFAULT_FREE_REQUESTS_PER_SECOND).toFixed(0)} s for its budget, however it sends.`,
    table(
      ['run', 'pipelined images/s', 'one at a time images/s', 'pipelined / one at a time', 'commands'],
      speed.pipelines.map((run) => [
        run.what,
        rate(run.pipelined.imagesPerSecond),
        rate(run.oneAtATime.imagesPerSecond),
        `${run.ratio.toFixed(2)}×`,
        `\`${run.pipelined.command}\`, \`${run.oneAtATime.command}\``,
      ]),
    ),
  ];
}

/** The soak's summary and its RSS curve, one row per sample. */
function soakSections(soak: SoakResult): string[] {
  const mib1 = (bytes: number) => (bytes / MIB).toFixed(1);
  return [
    `## Memory over ${soak.sessions.toLocaleString('en-US')} sessions`,
    `A fresh imgcache (default history settings), ${soak.concurrency} clients at a time, each session connect, HELLO, ` +
      `\`list\`, \`get ${soak.image}\` (and its RECEIVED), \`exit\`; ${soak.warmUpSessions.toLocaleString('en-US')} warm-up sessions first. ` +
      `${rate(soak.sessionsPerSecond)} sessions/s, ${soak.serverCpuMicrosecondsPerSession.toFixed(0)} µs server CPU per session. ` +
      `Server RSS ${mib1(soak.rssAfterWarmUpBytes)} MiB after the warm-up (**${mib1(soak.rssWarmUpPeakBytes)} MiB** at most during it), ` +
      `${mib1(soak.rssAfterSessionsBytes)} MiB after the last session (${(soak.growthBytesPerSession / 1024).toFixed(2)} KiB per ` +
      `session since the warm-up's end), **${mib1(soak.rssAfterLoadBytes)} MiB** ${(soak.settleMs / 1000).toFixed(1)} s after the ` +
      `load stopped (${(soak.growthRatio * 100).toFixed(1)}% above the warm-up's highest). ` +
      `The malloc heap ([heap]) grew ${soak.brkHeapGrowthBytesPerSession.toFixed(0)} bytes per session.`,
    table(
      ['sessions', 's', 'load', 'RSS MiB', '[heap] MiB'],
      soak.curve.map((sample) => [
        sample.sessions.toLocaleString('en-US'),
        sample.seconds.toFixed(1),
        sample.idle ? 'stopped' : 'on',
        mib1(sample.rssBytes),
        mib1(sample.brkHeapBytes),
      ]),
    ),
    'RSS is VmRSS from /proc/<pid>/status; [heap] is the resident size of the brk heap from /proc/<pid>/smaps, where ' +
      "the main thread's native allocations live (SQLite's page cache among them), apart from the JS heap, whose size " +
      'moves with the garbage collector.',
  ];
}

/** "plus 12 uncommitted files (src/ 5, db/ 4, test/ 3)": the working tree others were changing. */
function describeUncommitted(files: readonly string[]): string {
  if (files.length === 0) return '';
  const folders = new Map<string, number>();
  for (const file of files) {
    const folder = file.includes('/') ? `${file.split('/')[0]}/` : file;
    folders.set(folder, (folders.get(folder) ?? 0) + 1);
  }
  const counts = [...folders.entries()].map(([folder, count]) => `${folder} ${count}`).join(', ');
  return ` plus ${files.length} uncommitted files (${counts}; listed in latest.json)`;
}

function runCells(label: string, run: ServerRun): string[] {
  return [
    label,
    String(run.connections),
    run.server,
    rate(run.requestsPerSecond),
    run.megabytesPerSecond.toFixed(0),
    ms(run.p50Ms),
    ms(run.p99Ms),
    run.serverCpuMicrosPerRequest.toFixed(1),
    run.serverCpuCores.toFixed(2),
    mib(run.serverPeakRssBytes),
    run.eventsPerSecond === null ? '–' : rate(run.eventsPerSecond),
    run.generatorCpuCores.toFixed(2),
    run.otherCpuCores.toFixed(2),
    String(run.errors),
    (run.rounds ?? [run.requestsPerSecond]).map(rate).join(' / '),
  ];
}
