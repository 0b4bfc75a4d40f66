// The lock screen. When the session is locked (expired, revoked elsewhere, or locked by hand) the
// chat is hidden and made inert at once — not merely covered, so nothing of it can be read,
// focused or clicked — and only a password field is left. Unlocking shows the chat again exactly
// as it was: its DOM (drafts, scroll position, open room) was never torn down.

import { busy, h, setText } from './dom';
import { commands, toAppError, type Account, type LockCause } from './ipc';
import { offerTrust } from './trust';

export interface LockHooks {
  /** Right after the chat was hidden. */
  locked(): void;
  /** Right after the chat was shown again. */
  unlocked(): void;
}

function reason(cause: LockCause | null): string {
  switch (cause) {
    case 'expired':
      return 'Session expired';
    case 'revoked':
      return 'Session revoked on another device';
    case 'rejected':
      return 'Session ended by the server';
    case 'manual':
    case null:
      return 'Locked';
  }
}

export class LockScreen {
  private readonly reasonLine: HTMLElement;
  private readonly who: HTMLElement;
  private readonly password: HTMLInputElement;
  private readonly submit: HTMLButtonElement;
  private readonly error: HTMLElement;
  /** A certificate the server showed that this computer does not trust, to compare and trust. */
  private readonly trust: HTMLElement;
  private account: Account | null = null;
  private isLocked = false;

  constructor(
    private readonly root: HTMLElement,
    private readonly covered: HTMLElement,
    private readonly hooks: LockHooks,
  ) {
    this.reasonLine = h('h1', { id: 'lock-reason', testid: 'lock-reason' }, 'Locked');
    this.who = h('p', { class: 'muted' });
    this.password = h('input', {
      type: 'password',
      id: 'lock-password',
      testid: 'lock-password',
      autocomplete: 'current-password',
      required: true,
    });
    this.submit = h('button', { type: 'submit', class: 'primary', testid: 'unlock-submit' }, 'Unlock');
    this.error = h('p', { class: 'error', testid: 'lock-error', role: 'alert', hidden: true });
    this.trust = h('div', { hidden: true });
    const form = h(
      'form',
      { class: 'card lock-card', 'aria-labelledby': 'lock-reason' },
      h('div', { class: 'lock-icon', 'aria-hidden': 'true' }),
      this.reasonLine,
      this.who,
      h('label', { class: 'field', for: 'lock-password' }, h('span', {}, 'Password')),
      this.password,
      this.error,
      h('div', { class: 'actions' }, this.submit),
      this.trust,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.unlock();
    });
    root.setAttribute('data-testid', 'lock-screen');
    root.replaceChildren(form);
  }

  get locked(): boolean {
    return this.isLocked;
  }

  /** Covers the window. Hides the chat before anything else happens. */
  show(cause: LockCause | null, account: Account | null): void {
    this.covered.inert = true;
    this.covered.hidden = true;
    this.root.hidden = false;
    this.account = account;
    setText(this.reasonLine, reason(cause));
    setText(
      this.who,
      account === null ? '' : `Enter the password of ${account.user.name} to go on.`,
    );
    const wasLocked = this.isLocked;
    this.isLocked = true;
    if (!wasLocked) {
      this.password.value = '';
      this.error.hidden = true;
      this.hooks.locked();
    }
    this.password.focus();
  }

  /** Uncovers the window (the unlock succeeded, or the shell says `unlocked`). */
  hide(): void {
    if (!this.isLocked) return;
    this.isLocked = false;
    this.password.value = '';
    this.error.hidden = true;
    this.root.hidden = true;
    this.covered.hidden = false;
    this.covered.inert = false;
    this.hooks.unlocked();
  }

  private async unlock(): Promise<void> {
    const password = this.password.value;
    if (password === '') {
      this.password.focus();
      return;
    }
    await busy(this.submit, async () => {
      try {
        await commands.unlock(password);
        this.hide();
      } catch (err) {
        const e = toAppError(err);
        const server = this.account?.server;
        if (server !== undefined && offerTrust(this.trust, server, e, () => void this.unlock())) return;
        setText(this.error, e.code === 'bad_credentials' ? 'Wrong password.' : e.message);
        this.error.hidden = false;
        this.password.select();
      }
    });
  }
}
