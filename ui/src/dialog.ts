// A small modal dialog inside the chat window (new room, new DM, room directory, invite code).
// It lives inside the app root, so the lock screen hides it together with everything else.

import { h, setText, type Child } from './dom';
import { toAppError } from './ipc';

/** A dialog's line for what went wrong, hidden until [`showError`] fills it. */
export function errorLine(): HTMLElement {
  return h('p', { class: 'error', role: 'alert', hidden: true });
}

export function showError(line: HTMLElement, err: unknown): void {
  setText(line, toAppError(err).message);
  line.hidden = false;
}

export interface Dialog {
  readonly element: HTMLElement;
  readonly body: HTMLElement;
  close(): void;
}

let open: Dialog | null = null;

/** Closes whatever dialog is open (a room switch from a notification, for example). */
export function closeDialog(): void {
  open?.close();
}

/**
 * Opens a dialog over `behind` (made inert meanwhile) inside `host`. Escape, the Close button
 * and a click outside close it.
 */
export function openDialog(
  host: HTMLElement,
  behind: HTMLElement,
  title: string,
  testid: string,
  ...content: Child[]
): Dialog {
  closeDialog();
  const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const titleId = `dialog-title-${testid}`;
  const closeButton = h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Close' }, '×');
  const body = h('div', { class: 'dialog-body' }, ...content);
  const panel = h(
    'div',
    { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, testid },
    h('div', { class: 'dialog-head' }, h('h2', { id: titleId }, title), closeButton),
    body,
  );
  const backdrop = h('div', { class: 'dialog-backdrop' }, panel);

  const onKey = (event: KeyboardEvent): void => {
    if (event.key === 'Escape') {
      event.preventDefault();
      dialog.close();
    }
  };
  const dialog: Dialog = {
    element: panel,
    body,
    close(): void {
      if (open !== dialog) return;
      open = null;
      backdrop.remove();
      behind.inert = false;
      document.removeEventListener('keydown', onKey);
      previous?.focus();
    },
  };

  closeButton.addEventListener('click', () => dialog.close());
  backdrop.addEventListener('mousedown', (event) => {
    if (event.target === backdrop) dialog.close();
  });
  document.addEventListener('keydown', onKey);
  behind.inert = true;
  host.appendChild(backdrop);
  open = dialog;
  const first = body.querySelector<HTMLElement>('input, select, textarea, button');
  (first ?? closeButton).focus();
  return dialog;
}
