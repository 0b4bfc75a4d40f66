// Start-up: ask the shell for its status, then show the first-run screen, the lock screen or the
// chat. The lock screen is wired before anything else so a `locked` event is never missed.

import './style.css';

import { Chat } from './chat';
import { h } from './dom';
import { commands, on, toAppError, type Account, type AppStatus, type LockCause } from './ipc';
import { LockScreen } from './lock';
import { confirmQuit } from './quit';
import { showSetup } from './setup';

function root(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`index.html lacks #${id}`);
  return el;
}

const setupRoot = root('setup');
const appRoot = root('app');
const lockRoot = root('lock');

let chat: Chat | null = null;
let account: Account | null = null;
/** A `locked` event that came before the account was known (while start-up awaited the status). */
let earlyLock: LockCause | null = null;

const lockScreen = new LockScreen(lockRoot, appRoot, {
  locked: () => chat?.suspend(),
  unlocked: () => chat?.resume(),
});

/** The app never navigates: links open in the system browser, and only through `open_link`. */
function guardNavigation(): void {
  const stray = (event: Event): void => {
    const target = event.target;
    if (target instanceof Element && target.closest('a') !== null) event.preventDefault();
  };
  // Message links call open_link from their own handlers; anything else is stopped here.
  document.addEventListener('click', stray);
  document.addEventListener('auxclick', stray);
  // A file dropped on the window would otherwise be opened in place of the app.
  document.addEventListener('dragover', (event) => event.preventDefault());
  document.addEventListener('drop', (event) => event.preventDefault());
  // Every form handles its own submit; none may reload the page.
  document.addEventListener('submit', (event) => event.preventDefault(), true);
}

function showFatal(err: unknown): void {
  const retry = h('button', { type: 'button', class: 'primary' }, 'Try again');
  retry.addEventListener('click', () => window.location.reload());
  setupRoot.replaceChildren(
    h(
      'div',
      { class: 'card setup-card', role: 'alert' },
      h('h1', {}, 'Tidings could not start'),
      h('p', { class: 'muted' }, toAppError(err).message),
      h('div', { class: 'actions' }, retry),
    ),
  );
  setupRoot.hidden = false;
}

async function enterChat(known?: AppStatus): Promise<void> {
  const status = known ?? (await commands.status());
  if (status.account === null) {
    showSetup(setupRoot, () => void leaveSetup());
    return;
  }
  account = status.account;
  // Cover first: not one frame of the chat shows while locked.
  if (account.locked || earlyLock !== null) lockScreen.show(earlyLock, account);
  earlyLock = null;
  chat = new Chat(appRoot, status, {
    isLocked: () => lockScreen.locked,
    lock: (cause) => lockScreen.show(cause, account),
  });
  appRoot.hidden = lockScreen.locked;
  appRoot.inert = lockScreen.locked;
  await chat.start();
}

async function leaveSetup(): Promise<void> {
  setupRoot.hidden = true;
  setupRoot.replaceChildren();
  try {
    await enterChat();
  } catch (err) {
    showFatal(err);
  }
}

async function boot(): Promise<void> {
  guardNavigation();
  await Promise.all([
    on('locked', ({ cause }) => {
      if (account !== null) lockScreen.show(cause, account);
      else earlyLock = cause;
    }),
    on('unlocked', () => {
      earlyLock = null;
      lockScreen.hide();
    }),
    // Asked over whatever the window shows: the lock screen too.
    on('confirm_quit', () => confirmQuit(lockScreen.locked ? lockRoot : appRoot)),
  ]);
  const status = await commands.status();
  if (status.account === null) {
    showSetup(setupRoot, () => void leaveSetup());
    return;
  }
  await enterChat(status);
}

boot().catch(showFatal);
