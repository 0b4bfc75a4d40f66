// The pure arithmetic of the virtualized message list: no DOM here, so it can be tested alone.
//
// Rows have heights (measured once rendered, estimated before). `offsets` holds their prefix
// sums: `offsets[i]` is the top of row `i` and `offsets[n]` the height of all `n` rows. Finding
// the rows under the viewport is then a binary search, whatever the number of rows.

/** A half-open range of row indices: `start` included, `end` excluded. */
export interface Range {
  start: number;
  end: number;
}

/** Where the top of the viewport is: inside row `index`, `delta` pixels below its top. */
export interface Anchor {
  index: number;
  delta: number;
}

/** Prefix sums of `heights`, one longer than it. */
export function prefixOffsets(heights: ArrayLike<number>): Float64Array {
  const offsets = new Float64Array(heights.length + 1);
  let top = 0;
  for (let i = 0; i < heights.length; i++) {
    offsets[i] = top;
    top += heights[i] ?? 0;
  }
  offsets[heights.length] = top;
  return offsets;
}

/** The row that contains `y` (clamped to the first and the last row); 0 when there are none. */
export function rowAt(offsets: ArrayLike<number>, y: number): number {
  const n = offsets.length - 1;
  if (n <= 0) return 0;
  let lo = 0;
  let hi = n - 1;
  // The last row whose top is at or above y.
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((offsets[mid] ?? 0) <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The rows to render for a viewport `height` pixels tall scrolled to `scrollTop` (both measured
 * from the top of the first row), with `overscan` extra rows above and below.
 */
export function visibleRange(
  offsets: ArrayLike<number>,
  scrollTop: number,
  height: number,
  overscan: number,
): Range {
  const n = offsets.length - 1;
  if (n <= 0 || height <= 0) return { start: 0, end: 0 };
  const top = Math.max(0, scrollTop);
  const bottom = top + height;
  const first = rowAt(offsets, top);
  let last = rowAt(offsets, bottom);
  // A row that starts exactly at the bottom edge is not visible.
  if (last > first && (offsets[last] ?? 0) >= bottom) last--;
  return {
    start: Math.max(0, first - overscan),
    end: Math.min(n, last + 1 + overscan),
  };
}

/** The anchor for a viewport whose top is at `scrollTop`. */
export function anchorAt(offsets: ArrayLike<number>, scrollTop: number): Anchor {
  const index = rowAt(offsets, scrollTop);
  return { index, delta: scrollTop - (offsets[index] ?? 0) };
}

/** The scrollTop that puts the viewport's top back at `anchor`, with the rows' new offsets. */
export function scrollTopFor(offsets: ArrayLike<number>, anchor: Anchor): number {
  const total = offsets[offsets.length - 1] ?? 0;
  const top = (offsets[anchor.index] ?? total) + anchor.delta;
  return Math.max(0, top);
}
