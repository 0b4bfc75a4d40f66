// The virtual list's arithmetic and link splitting, on the compiled modules (`npm test` compiles
// them first). Run with node's own test runner.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { splitLinks } from '../build-test/link.js';
import { anchorAt, prefixOffsets, rowAt, scrollTopFor, visibleRange } from '../build-test/virtual.js';

const fixed = (n, height) => prefixOffsets(new Array(n).fill(height));

test('100,000 rows of 20 px: only the rows under the viewport, plus overscan', () => {
  const offsets = fixed(100_000, 20);
  assert.equal(offsets[100_000], 2_000_000);
  // Rows 2500..2529 fill [50000, 50600); row 2530 starts exactly at the bottom edge.
  assert.deepEqual(visibleRange(offsets, 50_000, 600, 5), { start: 2495, end: 2535 });
});

test('the range is clamped at both ends', () => {
  const offsets = fixed(100, 20);
  assert.deepEqual(visibleRange(offsets, 0, 100, 8), { start: 0, end: 13 });
  assert.deepEqual(visibleRange(offsets, 1_900, 100, 8), { start: 87, end: 100 });
  assert.deepEqual(visibleRange(offsets, 99_999, 100, 8), { start: 91, end: 100 });
  assert.deepEqual(visibleRange(prefixOffsets([]), 0, 100, 8), { start: 0, end: 0 });
  assert.deepEqual(visibleRange(offsets, 0, 0, 8), { start: 0, end: 0 });
});

test('measured heights of different sizes', () => {
  const offsets = prefixOffsets([30, 60, 10, 100, 40]); // tops 0 30 90 100 200, total 240
  assert.equal(rowAt(offsets, 0), 0);
  assert.equal(rowAt(offsets, 95), 2);
  assert.equal(rowAt(offsets, 100), 3);
  assert.equal(rowAt(offsets, 10_000), 4);
  assert.deepEqual(visibleRange(offsets, 35, 60, 0), { start: 1, end: 3 });
});

test('an anchor keeps the same row in view after rows are prepended', () => {
  const before = fixed(50, 20);
  const anchor = anchorAt(before, 130); // row 6, 10 px into it
  assert.deepEqual(anchor, { index: 6, delta: 10 });
  const after = fixed(100, 20); // 50 older rows came in front: row 6 is now row 56
  assert.equal(scrollTopFor(after, { index: anchor.index + 50, delta: anchor.delta }), 1130);
});

test('links: http(s) only, trailing punctuation left out, the text kept whole', () => {
  const text = 'see https://example.org/a_(b)). and javascript:alert(1) <img src=x onerror=alert(1)>';
  const segments = splitLinks(text);
  assert.equal(segments.map((s) => s.text).join(''), text);
  assert.deepEqual(
    segments.filter((s) => s.kind === 'link').map((s) => s.url),
    ['https://example.org/a_(b)'],
  );
});
