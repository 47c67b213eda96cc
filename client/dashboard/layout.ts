/**
 * Where each panel goes for a terminal of a given size: pure arithmetic, so a test can check that 80x24 (the size it
 * is made for) still has room for every panel; a smaller terminal still draws, with panels cut. Rows from the top:
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

export function computeLayout(columns: number, rows: number, bannerRows: number): Layout {
  const width = Math.max(20, columns);
  const height = Math.max(12, rows);
  const logRows = height >= 28 ? 7 : 5;
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
