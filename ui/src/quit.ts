// Quit while this computer hosts the group: the group's server stops with the app, so the window
// asks first (the tray's Quit brings it forward and sends `confirm_quit`). Closing the window
// instead keeps both running in the tray.

import { errorLine, openDialog, showError } from './dialog';
import { busy, h } from './dom';
import { commands } from './ipc';

/** Asks whether to quit and stop hosting; `behind` is made inert meanwhile. */
export function confirmQuit(behind: HTMLElement): void {
  const stay = h('button', { type: 'button', class: 'primary', testid: 'quit-cancel' }, 'Keep hosting');
  const quit = h('button', { type: 'button', class: 'danger', testid: 'quit-confirm' }, 'Quit and stop the server');
  const error = errorLine();
  const dialog = openDialog(
    document.body,
    behind,
    'Quit Tidings?',
    'quit-dialog',
    h(
      'p',
      {},
      'This computer hosts your group: its server stops when Tidings quits, and nobody can chat ' +
        'until you start Tidings again.',
    ),
    h(
      'p',
      { class: 'muted small' },
      'To keep it running, close the window instead: Tidings stays in the tray and goes on serving.',
    ),
    error,
    h('div', { class: 'actions' }, quit, stay),
  );
  stay.addEventListener('click', () => dialog.close());
  quit.addEventListener('click', () => {
    void busy(quit, async () => {
      try {
        await commands.quit();
      } catch (err) {
        showError(error, err);
      }
    });
  });
  stay.focus();
}
