/**
 * Where each panel goes for a terminal of a given size: pure arithmetic, so a test can check that 80x24 (the size it
 * is made for) still has room for every panel; below MIN_COLUMNS x MIN_ROWS the dashboard shows a message instead
 * (too-small-panel.ts). Rows from the top:
 * the header (2), the main area (the image table and the preview side by side, or the usage table), the log, the
 * banner (only while there is one), the command line (1) and the key bar (1).
 */

export interface Rect {
  top: number;
  left: number;
  width: number;
  height: number;
}

export interface Layout {
  header: Rect;
  table: Rect;
  preview: Rect;
  usage: Rect;
  log: Rect;
  banner: Rect;
  command: Rect;
  keyBar: Rect;
}

export const HEADER_ROWS = 2;

/** The rows the banner may take: three from 20 rows up, two below (the main area needs them more). */
export function bannerRowsFor(rows: number): number {
  return rows >= 20 ? 3 : 2;
}

/** the log's rows below 28 rows */
const LOG_ROWS = 5;
/** the main area's rows at the least: the table's borders, its header and two images */
const MIN_MAIN_ROWS = 5;

/**
 * The smallest terminal the layout can show: the rows of every panel at their least, a banner of two rows among
 * them; the columns of a table whose name, size and state columns show short names whole beside a preview. Below
 * it the dashboard says so instead of drawing panels cut to nothing.
 */
export const MIN_COLUMNS = 60;
export const MIN_ROWS = HEADER_ROWS + MIN_MAIN_ROWS + LOG_ROWS + 2 + 1 + 1;

export function layoutFits(columns: number, rows: number): boolean {
  return columns >= MIN_COLUMNS && rows >= MIN_ROWS;
}

export function computeLayout(columns: number, rows: number, bannerRows: number): Layout {
  const width = Math.max(20, columns);
  const height = Math.max(12, rows);
  const logRows = height >= 28 ? 7 : LOG_ROWS;
  const keyBar = { top: height - 1, left: 0, width, height: 1 };
  const command = { top: height - 2, left: 0, width, height: 1 };
  const banner = { top: height - 2 - bannerRows, left: 0, width, height: bannerRows };
  const log = { top: banner.top - logRows, left: 0, width, height: logRows };
  const mainRows = Math.max(3, log.top - HEADER_ROWS);
  // The table needs its columns more than the picture needs width: it takes a larger share of a narrow terminal.
  const tableColumns = Math.round(width * (width >= 100 ? 0.6 : 0.65));
  return {
    header: { top: 0, left: 0, width, height: HEADER_ROWS },
    table: { top: HEADER_ROWS, left: 0, width: tableColumns, height: mainRows },
    preview: { top: HEADER_ROWS, left: tableColumns, width: width - tableColumns, height: mainRows },
    usage: { top: HEADER_ROWS, left: 0, width, height: mainRows },
    log,
    banner,
    command,
    keyBar,
  };
}
