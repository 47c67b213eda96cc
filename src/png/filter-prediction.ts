/**
 * PNG's per-byte filter prediction (PNG specification, section 9): what each filter type predicts for a byte from
 * its neighbours to the left, above and above-left (0 for a neighbour outside the image). The encoder writes the
 * byte minus its prediction; the decoder adds the prediction back. Pure.
 */

/** Filter types 0 (None), 1 (Sub), 2 (Up), 3 (Average) and 4 (Paeth). */
export const FILTER_TYPE_COUNT = 5;

export function isFilterType(filter: number): boolean {
  return Number.isInteger(filter) && filter >= 0 && filter < FILTER_TYPE_COUNT;
}

/** The prediction of filter type `filter` (0 for None). */
export function predictByte(filter: number, left: number, up: number, upLeft: number): number {
  switch (filter) {
    case 1:
      return left;
    case 2:
      return up;
    case 3:
      return (left + up) >>> 1;
    case 4:
      return paethPredictor(left, up, upLeft);
    default:
      return 0;
  }
}

/** The neighbour closest to left + up - upLeft, ties going to left, then up. */
function paethPredictor(left: number, up: number, upLeft: number): number {
  const estimate = left + up - upLeft;
  const distLeft = Math.abs(estimate - left);
  const distUp = Math.abs(estimate - up);
  const distUpLeft = Math.abs(estimate - upLeft);
  if (distLeft <= distUp && distLeft <= distUpLeft) return left;
  if (distUp <= distUpLeft) return up;
  return upLeft;
}
