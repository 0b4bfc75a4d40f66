// Drawing one message row. The body is text nodes and DOM-built links only: a body of
// `<img src=x onerror=alert(1)>` shows exactly those characters.

import { h } from './dom';
import type { Row } from './history';
import { splitLinks } from './link';
import { fullTime, messageTime } from './time';

export interface RowActions {
  /** A person clicked a link in a message. */
  openLink(url: string): void;
  /** A person dismissed a message the server refused. */
  dismiss(row: Row): void;
}

/** The message text, with http(s) links as <a> elements that never navigate the app. */
export function renderBody(text: string, openLink: (url: string) => void): HTMLElement {
  const body = h('div', { class: 'message-body', testid: 'message-body' });
  for (const segment of splitLinks(text)) {
    if (segment.kind === 'text') {
      body.appendChild(document.createTextNode(segment.text));
      continue;
    }
    const a = document.createElement('a');
    a.href = segment.url;
    a.rel = 'noopener noreferrer';
    a.title = segment.url;
    a.textContent = segment.text;
    a.addEventListener('click', (event) => {
      event.preventDefault();
      openLink(segment.url);
    });
    // A middle click would otherwise try to open a new window.
    a.addEventListener('auxclick', (event) => event.preventDefault());
    a.draggable = false;
    body.appendChild(a);
  }
  return body;
}

/** A signature of everything that changes how a row looks: a row is redrawn when it changes. */
export function rowLook(row: Row): string {
  return `${row.compact ? 'c' : 'f'}|${row.state}|${row.error ?? ''}`;
}

export function renderRow(row: Row, me: number, actions: RowActions): HTMLElement {
  const pending = row.id === null;
  const mentionsMe = row.mentions.includes(me);
  const classes = ['message'];
  if (row.compact) classes.push('compact');
  if (pending) classes.push('pending');
  if (row.state === 'failed') classes.push('failed');
  if (mentionsMe) classes.push('mentions-me');
  if (row.author.id === me) classes.push('mine');

  const el = h('div', {
    class: classes.join(' '),
    role: 'listitem',
    testid: pending ? 'message-pending' : 'message',
    'data-id': row.id ?? undefined,
    'data-client-id': pending ? (row.clientId ?? undefined) : undefined,
    title: row.compact ? fullTime(row.sentAt) : undefined,
  });

  if (!row.compact) {
    el.appendChild(
      h(
        'div',
        { class: 'message-meta' },
        h('span', { class: 'message-author' }, row.author.name),
        h('time', { class: 'message-time', title: fullTime(row.sentAt) }, messageTime(row.sentAt)),
      ),
    );
  }
  el.appendChild(renderBody(row.body, actions.openLink));

  if (row.state === 'sending') {
    el.appendChild(h('div', { class: 'message-status', testid: 'message-status' }, 'sending…'));
  } else if (row.state === 'failed') {
    const dismiss = h('button', { type: 'button', class: 'link-button' }, 'Dismiss');
    dismiss.addEventListener('click', () => actions.dismiss(row));
    el.appendChild(
      h(
        'div',
        { class: 'message-status error', testid: 'message-status' },
        `Not sent: ${row.error ?? 'refused by the server'} `,
        dismiss,
      ),
    );
  }
  return el;
}
