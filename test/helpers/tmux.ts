/**
 * A real terminal for end-to-end tests of the dashboard: a private tmux server (its own socket, `-L`, and an empty
 * configuration) runs a command in a detached session of a chosen size; the test types with `send-keys` and reads
 * the screen with `capture-pane`. Waiting for something on the screen is polling the screen until it shows up, up
 * to a deadline: the screen is the only event a terminal program gives. A test process that ends before `kill()`
 * (an exception, Ctrl-C, a kill) ends the tmux server on its way out (./cleanup-on-exit.ts).
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { cleanUpOnExit } from './cleanup-on-exit.ts';

const run = promisify(execFile);

/** The pane's title before the program starts, so a test can see that the program gives it back. */
export const SHELL_TITLE = 'shell-before-imgcache';

/** What the shell prints when the program under test has ended, before its exit status. */
const EXIT_MARK = 'program ended with status';
const EXIT_STATUS = /program ended with status (\d+)/;

/** How often the screen is read while waiting, and how long a wait may take by default (ms). */
const POLL_MS = 40;
const DEFAULT_DEADLINE_MS = 10_000;

/** The environment of a program under test: a terminal blessed knows, UTF-8, and ASCII line drawing off. */
export const TERMINAL_ENV = { TERM: 'xterm-256color', LANG: 'C.UTF-8', NCURSES_NO_UTF8_ACS: '1' } as const;

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export class TmuxServer {
  readonly socket: string;
  readonly #config: string;
  /** takes the exit cleanup off the list; set while a session may be running */
  #forget: (() => void) | null = null;

  /** `folder` holds the empty configuration; the socket name is unique to this run. */
  constructor(folder: string) {
    this.socket = `imgcache-e2e-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.#config = path.join(folder, 'tmux.conf');
    // A dead pane stays on the screen (with its exit status) so a test can read what a program printed last.
    writeFileSync(this.#config, 'set-option -g remain-on-exit on\nset-option -g history-limit 100\n');
  }

  async tmux(...args: string[]): Promise<string> {
    const { stdout } = await run('tmux', ['-L', this.socket, '-f', this.#config, '-u', ...args], {
      env: { ...process.env, ...TERMINAL_ENV },
    });
    return stdout;
  }

  /**
   * Starts `argv` in a new detached session of `width` x `height`, in `cwd`, with the terminal environment. A shell
   * runs it and prints its exit status when it ends, where the test reads it as a person would.
   */
  async start(
    name: string,
    argv: string[],
    options: { width: number; height: number; cwd: string; env?: Record<string, string> },
  ): Promise<TmuxPane> {
    const env = Object.entries({ ...TERMINAL_ENV, ...options.env }).map(([key, value]) => `${key}=${value}`);
    const script = `printf '\\033]2;${SHELL_TITLE}\\007'; "$@"; echo "${EXIT_MARK} $?"`;
    const command = ['sh', '-c', script, 'sh', 'env', ...env, ...argv].map(shellQuote).join(' ');
    // the first session starts the tmux server: from then on, an interrupted test process ends it on its way out
    this.#forget ??= cleanUpOnExit(() => {
      execFileSync('tmux', ['-L', this.socket, 'kill-server'], { stdio: 'ignore', timeout: 5_000 });
    });
    await this.tmux(
      'new-session',
      '-d',
      '-s',
      name,
      '-x',
      String(options.width),
      '-y',
      String(options.height),
      '-c',
      options.cwd,
      command,
    );
    return new TmuxPane(this, name);
  }

  /** Ends every session of this server (their programs get SIGHUP) and the server itself. */
  async kill(): Promise<void> {
    await this.tmux('kill-server').catch(() => {});
    this.#forget?.();
    this.#forget = null;
  }
}

export class TmuxPane {
  readonly #server: TmuxServer;
  readonly name: string;

  constructor(server: TmuxServer, name: string) {
    this.#server = server;
    this.name = name;
  }

  /** The screen as text, one line per row, trailing spaces cut. */
  capture(): Promise<string> {
    return this.#server.tmux('capture-pane', '-p', '-t', this.name);
  }

  /** Presses keys by tmux name: 'Enter', 'Escape', 'Up', 'C-c', 'j', 'Tab'. */
  async press(...keys: string[]): Promise<void> {
    await this.#server.tmux('send-keys', '-t', this.name, ...keys);
  }

  /** Types text literally. */
  async type(text: string): Promise<void> {
    await this.#server.tmux('send-keys', '-t', this.name, '-l', text);
  }

  /**
   * A mouse button pressed and released at a cell (0-based column and row), as a terminal reports it in xterm's
   * normal encoding (ESC [ M, then button, column and row, each plus 32, 1-based), sent as bytes.
   */
  async click(column: number, row: number): Promise<void> {
    // One write for both, as a terminal often delivers them: a program must act on the press.
    await this.#mouse([0, 3], column, row);
  }

  /** The mouse wheel turned once over a cell: up or down. */
  async wheel(column: number, row: number, direction: 'up' | 'down'): Promise<void> {
    await this.#mouse([direction === 'up' ? 64 : 65], column, row);
  }

  async #mouse(buttons: number[], column: number, row: number): Promise<void> {
    const bytes = buttons.flatMap((button) => [0x1b, 0x5b, 0x4d, 32 + button, 33 + column, 33 + row]);
    await this.#server.tmux('send-keys', '-t', this.name, '-H', ...bytes.map((byte) => byte.toString(16)));
  }

  /** The pane's title, as the programs in it set it. */
  async title(): Promise<string> {
    return (await this.#server.tmux('display-message', '-p', '-t', this.name, '#{pane_title}')).trim();
  }

  /** The process id of the program under test: the child of the shell that runs it in the pane. */
  async programPid(): Promise<number> {
    const shell = (await this.#server.tmux('display-message', '-p', '-t', this.name, '#{pane_pid}')).trim();
    const children = readFileSync(`/proc/${shell}/task/${shell}/children`, 'utf8').trim().split(/\s+/);
    return Number(children[0]);
  }

  async resize(width: number, height: number): Promise<void> {
    await this.#server.tmux('resize-window', '-t', this.name, '-x', String(width), '-y', String(height));
  }

  /** The screen and the lines scrolled off its top (a program's last words can scroll off when it ends). */
  captureWithHistory(): Promise<string> {
    return this.#server.tmux('capture-pane', '-p', '-S', '-', '-t', this.name);
  }

  /**
   * Polls the screen (or what `read` returns) until `check` holds, and returns that screen; fails with the last
   * screen at the deadline.
   */
  async waitFor(
    check: string | RegExp | ((screen: string) => boolean),
    deadlineMs = DEFAULT_DEADLINE_MS,
    read: () => Promise<string> = () => this.capture(),
  ): Promise<string> {
    const holds =
      typeof check === 'function'
        ? check
        : typeof check === 'string'
          ? (screen: string) => screen.includes(check)
          : (screen: string) => check.test(screen);
    const started = Date.now();
    let screen = '';
    for (;;) {
      screen = await read();
      if (holds(screen)) return screen;
      if (Date.now() - started > deadlineMs) {
        throw new Error(`the screen never showed ${String(check)} within ${deadlineMs} ms; it shows:\n${screen}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** The program's exit status, once the shell that ran it has printed it. */
  async waitForExit(deadlineMs = DEFAULT_DEADLINE_MS): Promise<number> {
    const screen = await this.waitFor(EXIT_STATUS, deadlineMs, () => this.captureWithHistory());
    return Number(EXIT_STATUS.exec(screen)?.[1]);
  }
}
