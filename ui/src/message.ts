// Drawing one message row. The body is text nodes and DOM-built links only: a body of
// `<img src=x onerror=alert(1)>` shows exactly those characters.

import { renderAttachments } from './attachments';
import { h } from './dom';
import type { Row } from './history';
import { splitLinks } from './link';
import { fullTime, messageTime } from './time';

export interface RowActions {
  /** A person clicked a link in a message. */
  openLink(url: string): void;
  /** A person dismissed a message the server refused. */
  dismiss(row: Row): void;
  /** Adds (`on`) or takes back the user's reaction. */
  react(row: Row, emoji: string, on: boolean): void;
  /** Opens (or, with null, closes) the editor of one's own message. */
  edit(row: Row, body: string | null): void;
  /** Saves the editor's text as the message's new body. */
  saveEdit(row: Row, body: string): void;
  /** Deletes one's own message (an owner: anyone's). */
  remove(row: Row): void;
  /** The next message answers this one. */
  reply(row: Row): void;
  /** Shows message `id` of the open room (what a reply answers), loading history as needed. */
  jump(id: number): void;
}

/** The reactions offered by a message's toolbar. */
export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '👀', '✅'] as const;

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
  return `${row.compact ? 'c' : 'f'}|${row.state}|${row.error ?? ''}|${row.version}`;
}

export function renderRow(row: Row, me: number, actions: RowActions, mayDeleteAny = false): HTMLElement {
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
  if (row.unreadMark) {
    el.classList.add('first-unread');
    el.prepend(h('div', { class: 'unread-divider', testid: 'unread-divider', role: 'separator' }, h('span', {}, 'New')));
  }
  if (row.deleted) {
    el.classList.add('deleted');
    el.appendChild(h('div', { class: 'message-body message-deleted', testid: 'message-deleted' }, 'Message deleted'));
    return el;
  }
  if (row.replyTo !== null) el.appendChild(renderQuote(row, actions));
  if (row.editing) {
    el.appendChild(renderEditor(row, actions));
  } else if (row.body !== '' || row.editedAt !== null || row.attachments.length === 0) {
    const body = renderBody(row.body, actions.openLink);
    if (row.editedAt !== null) {
      body.appendChild(
        h('span', { class: 'message-edited', testid: 'message-edited', title: fullTime(row.editedAt) }, ' (edited)'),
      );
    }
    el.appendChild(body);
  }
  if (row.attachments.length > 0) el.appendChild(renderAttachments(row.attachments));
  if (row.reactions.length > 0) el.appendChild(renderReactions(row, me, actions));
  if (!pending && !row.editing) el.appendChild(renderTools(row, me, actions, mayDeleteAny));

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

/** Each emoji with how many reacted; the user's own are marked, and a click toggles them. */
function renderReactions(row: Row, me: number, actions: RowActions): HTMLElement {
  const list = h('div', { class: 'reactions', testid: 'reactions' });
  for (const reaction of row.reactions) {
    const mine = reaction.users.includes(me);
    const chip = h(
      'button',
      {
        type: 'button',
        class: mine ? 'reaction mine' : 'reaction',
        testid: 'reaction',
        'data-emoji': reaction.emoji,
        'aria-pressed': mine ? 'true' : 'false',
        title: `${reaction.users.length} reacted with ${reaction.emoji}`,
      },
      `${reaction.emoji} ${reaction.users.length}`,
    );
    chip.addEventListener('click', () => actions.react(row, reaction.emoji, !mine));
    list.appendChild(chip);
  }
  return list;
}

/** What a reply answers, as that message now is; a click shows it. */
function renderQuote(row: Row, actions: RowActions): HTMLElement {
  const quote = row.replyTo;
  const text = quote === null ? '' : quote.deleted ? 'Message deleted' : quote.preview;
  const button = h(
    'button',
    { type: 'button', class: quote?.deleted === true ? 'quote deleted' : 'quote', testid: 'quote', 'data-reply-to': quote?.id },
    h('span', { class: 'quote-author' }, quote?.author.name ?? ''),
    h('span', { class: 'quote-text' }, text),
  );
  button.addEventListener('click', () => {
    if (quote !== null) actions.jump(quote.id);
  });
  return button;
}

/** The row's toolbar, shown on hover or focus: quick reactions, and on one's own message Edit
 * and Delete — for an owner, Delete on anyone's. */
function renderTools(row: Row, me: number, actions: RowActions, mayDeleteAny: boolean): HTMLElement {
  const tools = h('div', { class: 'message-tools', testid: 'message-tools' });
  for (const emoji of QUICK_REACTIONS) {
    const mine = row.reactions.some((r) => r.emoji === emoji && r.users.includes(me));
    const button = h(
      'button',
      { type: 'button', class: 'tool', testid: 'react-option', 'data-emoji': emoji, title: `React with ${emoji}` },
      emoji,
    );
    button.addEventListener('click', () => actions.react(row, emoji, !mine));
    tools.appendChild(button);
  }
  const reply = h('button', { type: 'button', class: 'tool', testid: 'message-reply' }, 'Reply');
  reply.addEventListener('click', () => actions.reply(row));
  tools.appendChild(reply);
  if (row.author.id === me) {
    const edit = h('button', { type: 'button', class: 'tool', testid: 'message-edit' }, 'Edit');
    edit.addEventListener('click', () => actions.edit(row, row.body));
    const remove = h('button', { type: 'button', class: 'tool danger', testid: 'message-delete' }, 'Delete');
    remove.addEventListener('click', () => actions.remove(row));
    tools.append(edit, remove);
  } else if (mayDeleteAny && !row.deleted) {
    const remove = h(
      'button',
      { type: 'button', class: 'tool danger', testid: 'message-delete', title: `Delete ${row.author.name}’s message (as an owner)` },
      'Delete',
    );
    remove.addEventListener('click', () => actions.remove(row));
    tools.append(remove);
  }
  return tools;
}

/** The body as an editor: Enter (or Save) saves, Shift+Enter is a new line, Escape cancels. */
function renderEditor(row: Row, actions: RowActions): HTMLElement {
  const box = document.createElement('textarea');
  box.className = 'edit-box';
  box.dataset['testid'] = 'edit-box';
  box.value = row.body;
  box.rows = Math.min(8, row.body.split('\n').length + 1);
  box.setAttribute('aria-label', 'Edit message');
  const save = h('button', { type: 'button', class: 'primary', testid: 'edit-save' }, 'Save');
  const cancel = h('button', { type: 'button', testid: 'edit-cancel' }, 'Cancel');
  save.addEventListener('click', () => actions.saveEdit(row, box.value));
  cancel.addEventListener('click', () => actions.edit(row, null));
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      actions.saveEdit(row, box.value);
    } else if (event.key === 'Escape') {
      event.preventDefault();
      actions.edit(row, null);
    }
  });
  // Focused once it is in the page.
  queueMicrotask(() => {
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  });
  return h('div', { class: 'message-editor' }, box, h('div', { class: 'actions' }, save, cancel));
}
