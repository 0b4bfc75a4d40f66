// Finding web links in message text. Pure: the DOM side is in message.ts, which turns each link
// into an <a> built with the DOM API.

export type Segment = { kind: 'text'; text: string } | { kind: 'link'; text: string; url: string };

// Candidates start at a word boundary with http:// or https:// and run to whitespace or a
// character that cannot be part of a URL written in prose.
const CANDIDATE = /\bhttps?:\/\/[^\s<>"'`]+/gi;

// Punctuation that usually ends the sentence around a link rather than the link itself.
const TRAILING = /[.,;:!?*'"]+$/;

/** Whether `url` is an absolute http(s) URL that may be opened in the browser. */
export function isWebUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.host !== '';
  } catch {
    return false;
  }
}

/** Drops trailing punctuation, and closing brackets that have no opening one in the link. */
function trimLink(candidate: string): string {
  let link = candidate;
  for (;;) {
    const before = link;
    link = link.replace(TRAILING, '');
    for (const [open, close] of [['(', ')'], ['[', ']'], ['{', '}']] as const) {
      if (link.endsWith(close) && count(link, open) < count(link, close)) {
        link = link.slice(0, -1);
      }
    }
    if (link === before) return link;
  }
}

function count(text: string, ch: string): number {
  let n = 0;
  for (const c of text) if (c === ch) n++;
  return n;
}

/** Splits `text` into plain text and http(s) links, in order; joined back they equal `text`. */
export function splitLinks(text: string): Segment[] {
  const segments: Segment[] = [];
  let last = 0;
  for (const match of text.matchAll(CANDIDATE)) {
    const start = match.index ?? 0;
    const link = trimLink(match[0]);
    if (!isWebUrl(link)) continue;
    if (start > last) segments.push({ kind: 'text', text: text.slice(last, start) });
    segments.push({ kind: 'link', text: link, url: link });
    last = start + link.length;
  }
  if (last < text.length) segments.push({ kind: 'text', text: text.slice(last) });
  return segments;
}
