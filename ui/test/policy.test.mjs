// The browser's notification rules (`src/backend/browser/policy.ts`), which must match the
// desktop's (`crates/client/src/notify.rs`): who is told, when a burst grows, and the texts.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BURST_WINDOW_MS, Policy, preview } from '../build-test/backend/browser/policy.js';

const ME = 1;
const ana = { id: 2, name: 'ana' };
const me = { id: ME, name: 'me' };
const alert = (room, id, author = ana, text = `message ${id}`, mentions = false) => ({
  room,
  id,
  author,
  preview: text,
  sent_at: 0,
  mentions_you: mentions,
});

test('own messages, the focused room and do-not-disturb raise nothing', () => {
  const policy = new Policy(ME);
  assert.equal(policy.onAlert(alert(10, 1, me), '#ops', 0), null);
  policy.setFocusedRoom(10);
  assert.equal(policy.onAlert(alert(10, 2), '#ops', 0), null);
  assert.notEqual(policy.onAlert(alert(11, 3), '#lab', 0), null);
  policy.setDnd(true);
  assert.equal(policy.onAlert(alert(12, 4, ana, 'hi', true), '#dev', 0), null);
});

test('levels: nothing, and mentions (a DM counts as one)', () => {
  const policy = new Policy(ME);
  policy.setRoomLevel(10, 'nothing');
  assert.equal(policy.onAlert(alert(10, 1, ana, 'x', true), '#ops', 0), null);
  policy.setRoomLevel(11, 'mentions');
  assert.equal(policy.onAlert(alert(11, 2), '#lab', 0), null);
  assert.equal(policy.onAlert(alert(11, 3, ana, 'hey @me', true), '#lab', 0).title, 'ana mentioned you in #lab');
  policy.setRoomLevel(12, 'mentions');
  assert.equal(policy.onAlert(alert(12, 4), 'ana', 0).title, 'ana');
  policy.setRoomLevel(11, null);
  assert.equal(policy.level(11), 'all');
});

test('a burst in one room is one notification that grows, until the window passes', () => {
  const policy = new Policy(ME);
  const first = policy.onAlert(alert(10, 1, ana, 'one'), '#ops', 0);
  const second = policy.onAlert(alert(10, 2, ana, 'two'), '#ops', BURST_WINDOW_MS);
  assert.equal(first.count, 1);
  assert.equal(second.count, 2);
  assert.equal(second.key, first.key);
  assert.equal(second.title, '2 new messages in #ops');
  assert.equal(second.body, 'ana: two');
  const dm = policy.onAlert(alert(20, 3, ana, 'psst'), 'ana', BURST_WINDOW_MS);
  assert.notEqual(dm.key, first.key, 'another room, another burst');
  const later = policy.onAlert(alert(10, 4), '#ops', 2 * BURST_WINDOW_MS + 1);
  assert.equal(later.count, 1);
  assert.notEqual(later.key, first.key);
  // Focusing the room ends its burst.
  policy.setFocusedRoom(10);
  policy.setFocusedRoom(null);
  assert.equal(policy.onAlert(alert(10, 5), '#ops', 2 * BURST_WINDOW_MS + 2).count, 1);
});

test('texts stay plain text, and previews are cut at 140 characters', () => {
  const policy = new Policy(ME);
  const raw = '<b>bold</b> & <i>co</i>';
  assert.equal(policy.onAlert(alert(10, 1, ana, raw), '#ops', 0).body, raw);
  assert.equal(preview('short'), 'short');
  const long = '😀'.repeat(141);
  const cut = preview(long);
  assert.equal(Array.from(cut).length, 140);
  assert.ok(cut.endsWith('…'));
  assert.equal(preview('é'.repeat(140)), 'é'.repeat(140));
});
