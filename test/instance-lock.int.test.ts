/**
 * One server per history file: client names are numbered from the history, so a second server on the same file
 * would hand out names the first one also hands out. It is refused at start; a lock left by a killed server is not
 * an obstacle.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { processStartTime, processState } from '../db/instance-lock.ts';
import { openDatabase } from '../db/open-database.ts';
import { PACKAGE_ROOT } from '../src/config.ts';
import { refusal } from './helpers/refused-start.ts';
import { eventually, makeTemporaryFolder, startTestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

test('a second server on the same history is refused with history-in-use; after the first stops it starts', async () => {
  const folder = makeTemporaryFolder();
  const first = await startTestServer({ folder });
  const refused = await startTestServer({ folder }).then(
    () => null,
    (error: unknown) => error as { code?: string; message: string },
  );
  assert.is(refused?.code, 'history-in-use');
  assert.match(refused?.message ?? '', `pid ${process.pid}`);
  await first.stop();
  const second = await startTestServer({ folder });
  const client = await ImgcacheClient.connect({ port: second.port });
  await client.exit();
  await second.stop();
});

test('a lock left by a server that is gone (killed) is taken over', async () => {
  const folder = makeTemporaryFolder();
  const gone = spawnSync(process.execPath, ['-e', 'process.pid']).pid; // a process that has already exited
  writeFileSync(path.join(folder, 'history.sqlite.lock'), String(gone));
  const running = await startTestServer({ folder });
  const client = await ImgcacheClient.connect({ port: running.port });
  await client.exit();
  await running.stop();
});

test('a takeover guard left by a server that died while taking over a stale lock is cleared, and the lock taken over', async () => {
  const folder = makeTemporaryFolder();
  const gone = spawnSync(process.execPath, ['-e', 'process.pid']).pid;
  writeFileSync(path.join(folder, 'history.sqlite.lock'), String(gone));
  writeFileSync(path.join(folder, 'history.sqlite.lock.takeover'), String(gone));
  const running = await startTestServer({ folder });
  assert.not.ok(existsSync(path.join(folder, 'history.sqlite.lock.takeover')), 'the guard is gone');
  assert.match(readFileSync(path.join(folder, 'history.sqlite.lock'), 'utf8'), String(process.pid));
  await running.stop();
});

test('a lock naming our own pid that this process does not hold (a restarted container) is taken over', async () => {
  const folder = makeTemporaryFolder();
  writeFileSync(path.join(folder, 'history.sqlite.lock'), String(process.pid));
  const running = await startTestServer({ folder });
  await running.stop();
});

test('a second server given a symbolic link to the history (or to its folder) is refused with history-in-use', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  const first = await startTestServer({ folder });
  const elsewhere = makeTemporaryFolder();
  try {
    const fileLink = path.join(elsewhere, 'linked.sqlite');
    symlinkSync(database, fileLink);
    const folderLink = path.join(elsewhere, 'folder');
    symlinkSync(folder, folderLink);
    for (const link of [fileLink, path.join(folderLink, 'history.sqlite')]) {
      const refused = await refusal({ folder: elsewhere, database: link });
      assert.is(refused?.code, 'history-in-use', link);
    }
  } finally {
    await first.stop();
    rmSync(elsewhere, { recursive: true, force: true });
  }
});

test('a history with a hard link is refused with history-hard-linked, by either name, before anything is written', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  openDatabase(database).close();
  const linked = path.join(folder, 'linked.sqlite');
  linkSync(database, linked);
  try {
    for (const name of [database, linked]) {
      const refused = await refusal({ folder, database: name });
      assert.is(refused?.code, 'history-hard-linked', name);
      assert.match(refused?.message ?? '', /2 names \(hard links\)/);
    }
    assert.not.ok(existsSync(`${linked}-wal`), 'the link was never opened: no WAL of its own');
    assert.not.ok(existsSync(`${database}.lock`), 'no lock left behind');
    unlinkSync(linked);
    assert.is(await refusal({ folder, database }), null, 'with its one name again, it starts');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a symbolic link whose target does not exist yet locks the target, which a second server is refused', async () => {
  const folder = makeTemporaryFolder();
  const target = path.join(folder, 'real', 'history.sqlite');
  mkdirSync(path.dirname(target));
  const link = path.join(folder, 'link.sqlite');
  symlinkSync(target, link);
  const first = await startTestServer({ folder, database: link });
  try {
    assert.ok(existsSync(`${target}.lock`), 'the lock is named after the real path');
    assert.is((await refusal({ folder, database: target }))?.code, 'history-in-use');
  } finally {
    await first.stop();
    rmSync(folder, { recursive: true, force: true });
  }
});

test('the lock file holds the pid and the process start time', async () => {
  const folder = makeTemporaryFolder();
  const running = await startTestServer({ folder });
  try {
    const [pid, startTime] = readFileSync(path.join(folder, 'history.sqlite.lock'), 'utf8').trim().split(' ');
    assert.is(Number(pid), process.pid);
    assert.is(startTime, processStartTime(process.pid) ?? undefined);
  } finally {
    await running.stop();
  }
});

const withProc = processStartTime(process.pid) === null ? test.skip : test;

withProc('a lock whose pid now belongs to another live process (another start time) is taken over', async () => {
  const folder = makeTemporaryFolder();
  const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
  await once(stranger, 'spawn');
  try {
    const pid = stranger.pid as number;
    const started = Number(processStartTime(pid));
    writeFileSync(path.join(folder, 'history.sqlite.lock'), `${pid} ${started + 1}\n`);
    const running = await startTestServer({ folder });
    const client = await ImgcacheClient.connect({ port: running.port });
    await client.exit();
    await running.stop();
    // The same live pid with its real start time: that is the owner, still running.
    writeFileSync(path.join(folder, 'history.sqlite.lock'), `${pid} ${started}\n`);
    const refused = await refusal({ folder });
    assert.is(refused?.code, 'history-in-use');
    assert.match(refused?.message ?? '', `pid ${pid}`);
  } finally {
    stranger.kill('SIGKILL');
    rmSync(folder, { recursive: true, force: true });
  }
});

withProc('the start time is read after the command name, whatever it holds (spaces, parentheses)', async () => {
  const folder = makeTemporaryFolder();
  const oddName = path.join(folder, 'x) 1 2 (y');
  symlinkSync('/bin/sleep', oddName);
  const odd = spawn(oddName, ['60'], { stdio: 'ignore' });
  await once(odd, 'spawn');
  try {
    const ticksPerSecond = 100; // USER_HZ on Linux
    const uptimeTicks = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * ticksPerSecond;
    const started = Number(processStartTime(odd.pid as number));
    const ours = Number(processStartTime(process.pid));
    assert.ok(started >= ours && started <= uptimeTicks + 1, `${ours} <= ${started} <= ${uptimeTicks}`);
  } finally {
    odd.kill('SIGKILL');
    rmSync(folder, { recursive: true, force: true });
  }
});

withProc(
  'a lock whose process has exited but is not reaped yet (a zombie: a server just killed) is taken over',
  async () => {
    const folder = makeTemporaryFolder();
    // The shell starts a child that waits for our stdin to close, then becomes `sleep`, which never reaps it: once
    // the child exits it is a zombie. Its pid is printed.
    const parent = spawn('sh', ['-c', 'exec 3<&0; (read line <&3) & echo $!; exec sleep 60'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    try {
      const [line] = (await within(
        once(createInterface({ input: parent.stdout as NodeJS.ReadableStream }), 'line'),
        'the child pid',
      )) as [string];
      const zombie = Number(line);
      const comm = () => readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim();
      await eventually(() => comm() === 'sleep', 'the shell became sleep');
      parent.stdin?.end();
      await eventually(() => processState(zombie) === 'Z', 'the child is a zombie');
      writeFileSync(path.join(folder, 'history.sqlite.lock'), `${zombie} ${processStartTime(zombie)}\n`);
      const running = await startTestServer({ folder });
      assert.match(readFileSync(path.join(folder, 'history.sqlite.lock'), 'utf8'), String(process.pid));
      await running.stop();
    } finally {
      parent.kill('SIGKILL');
      rmSync(folder, { recursive: true, force: true });
    }
  },
);

const TRY_LOCK = `
import { lockHistory } from './db/instance-lock.ts';
process.stdout.write('ready\\n');
process.stdin.once('data', () => {
  let outcome;
  try {
    lockHistory(process.argv[1]);
    outcome = 'locked';
  } catch (error) {
    outcome = error.code ?? String(error);
  }
  process.stdout.write(outcome + '\\n');
  process.stdin.once('end', () => process.exit(0));
  process.stdin.resume();
});
`;

test('a stale lock is taken over by exactly one of several servers starting at the same moment', async () => {
  const folder = makeTemporaryFolder();
  const database = path.join(folder, 'history.sqlite');
  const gone = spawnSync(process.execPath, ['-e', 'process.pid']).pid;
  const contenders = 4;
  try {
    writeFileSync(`${database}.lock`, String(gone));
    const children = Array.from({ length: contenders }, () =>
      spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', TRY_LOCK, database], {
        cwd: PACKAGE_ROOT,
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    const lines = children.map((child) => createInterface({ input: child.stdout as NodeJS.ReadableStream }));
    const nextLine = (index: number) =>
      new Promise<string>((resolve) => (lines[index] as ReturnType<typeof createInterface>).once('line', resolve));
    await within(Promise.all(children.map((_, index) => nextLine(index))), 'every contender ready', 90_000);
    const outcomes = children.map((_, index) => nextLine(index));
    for (const child of children) child.stdin?.write('go\n');
    const results = await within(Promise.all(outcomes), 'every contender tried', 90_000);
    for (const child of children) child.stdin?.end();
    await Promise.all(children.map((child) => once(child, 'exit')));
    assert.is(results.filter((result) => result === 'locked').length, 1, results.join(', '));
    assert.ok(
      results.every((result) => result === 'locked' || result === 'history-in-use'),
      results.join(', '),
    );
    rmSync(`${database}.lock`, { force: true });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
