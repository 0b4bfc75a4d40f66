// First run: host a group on this computer (the default) or join a server someone else runs.
// In a browser the page's own server is the one to join: just a name, a password and, for a
// newcomer, the invite code (which a link may carry as `#invite=CODE`).

import { busy, h, setText } from './dom';
import { commands, platform, toAppError } from './ipc';
import { qrCanvas } from './qr';
import { inviteLink } from './rooms';
import { offerTrust } from './trust';

/** Builds the first-run screen in `root`; `done` runs once the account exists. */
export function showSetup(root: HTMLElement, done: () => void): void {
  if (platform === 'browser') {
    showLogin(root, done);
    return;
  }
  const error = h('p', { class: 'error', testid: 'setup-error', role: 'alert', hidden: true });
  const fail = (err: unknown): void => {
    setText(error, toAppError(err).message);
    error.hidden = false;
  };

  // The two paths, as tabs.
  const hostTab = h(
    'button',
    { type: 'button', role: 'tab', id: 'tab-host', testid: 'setup-host', 'aria-controls': 'panel-host' },
    h('strong', {}, 'Host a group on this computer'),
    h('span', { class: 'muted small' }, 'Start a new group. Others join you.'),
  );
  const joinTab = h(
    'button',
    { type: 'button', role: 'tab', id: 'tab-join', testid: 'setup-join', 'aria-controls': 'panel-join' },
    h('strong', {}, 'Join a server'),
    h('span', { class: 'muted small' }, 'Someone gave you an address.'),
  );

  // Hosting.
  const ownerName = h('input', {
    type: 'text',
    testid: 'owner-name',
    autocomplete: 'username',
    required: true,
    maxlength: 64,
  });
  const ownerPassword = h('input', {
    type: 'password',
    testid: 'owner-password',
    autocomplete: 'new-password',
    required: true,
  });
  const lan = h('input', { type: 'checkbox', testid: 'lan' });
  const hostSubmit = h('button', { type: 'submit', class: 'primary', testid: 'host-submit' }, 'Start hosting');
  const hostForm = h(
    'form',
    { class: 'stack' },
    h('label', { class: 'field' }, h('span', {}, 'Your name'), ownerName),
    h('label', { class: 'field' }, h('span', {}, 'Password'), ownerPassword),
    h('label', { class: 'check' }, lan, h('span', {}, 'Let other computers on my network join')),
    h('div', { class: 'actions' }, hostSubmit),
  );
  const hostPanel = h(
    'div',
    { role: 'tabpanel', id: 'panel-host', 'aria-labelledby': 'tab-host', class: 'setup-panel' },
    hostForm,
  );

  // Joining.
  const joinUrl = h('input', {
    type: 'url',
    testid: 'join-url',
    required: true,
    placeholder: 'http://hostname:7878',
    autocomplete: 'url',
  });
  const joinName = h('input', {
    type: 'text',
    testid: 'join-name',
    autocomplete: 'username',
    required: true,
    maxlength: 64,
  });
  const joinPassword = h('input', {
    type: 'password',
    testid: 'join-password',
    autocomplete: 'current-password',
    required: true,
  });
  const joinInvite = h('input', { type: 'text', testid: 'join-invite', autocomplete: 'off' });
  const joinSubmit = h('button', { type: 'submit', class: 'primary', testid: 'join-submit' }, 'Join');
  // Where a certificate this computer does not trust is shown, to compare and trust.
  const joinTrust = h('div', { hidden: true });
  const joinForm = h(
    'form',
    { class: 'stack' },
    h('label', { class: 'field' }, h('span', {}, 'Server address'), joinUrl),
    h('label', { class: 'field' }, h('span', {}, 'Your name'), joinName),
    h('label', { class: 'field' }, h('span', {}, 'Password'), joinPassword),
    h(
      'label',
      { class: 'field' },
      h('span', {}, 'Invite code ', h('span', { class: 'muted' }, '(when you are new here)')),
      joinInvite,
    ),
    h('div', { class: 'actions' }, joinSubmit),
    joinTrust,
  );
  const joinPanel = h(
    'div',
    { role: 'tabpanel', id: 'panel-join', 'aria-labelledby': 'tab-join', class: 'setup-panel', hidden: true },
    joinForm,
  );

  const card = h(
    'div',
    { class: 'card setup-card' },
    h('h1', {}, 'Welcome to Tidings'),
    h('p', { class: 'muted' }, 'A chat for your group, with alerts on your desktop.'),
    h('div', { role: 'tablist', class: 'setup-tabs', 'aria-label': 'How to start' }, hostTab, joinTab),
    hostPanel,
    joinPanel,
    error,
  );

  const choose = (host: boolean): void => {
    hostTab.setAttribute('aria-selected', String(host));
    joinTab.setAttribute('aria-selected', String(!host));
    hostTab.tabIndex = host ? 0 : -1;
    joinTab.tabIndex = host ? -1 : 0;
    hostPanel.hidden = !host;
    joinPanel.hidden = host;
    error.hidden = true;
  };
  hostTab.addEventListener('click', () => choose(true));
  joinTab.addEventListener('click', () => choose(false));
  choose(true);

  hostForm.addEventListener('submit', (event) => {
    event.preventDefault();
    error.hidden = true;
    void busy(hostSubmit, async () => {
      try {
        const hosted = await commands.hostGroup(ownerName.value.trim(), ownerPassword.value, lan.checked);
        ownerPassword.value = '';
        showHosted(card, hosted.host.address, hosted.host.lan, hosted.invite, done);
      } catch (err) {
        fail(err);
      }
    });
  });

  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    error.hidden = true;
    joinTrust.hidden = true;
    const url = joinUrl.value.trim();
    const invite = joinInvite.value.trim();
    void busy(joinSubmit, async () => {
      try {
        await commands.joinServer(url, joinName.value.trim(), joinPassword.value, invite === '' ? null : invite);
        joinPassword.value = '';
        done();
      } catch (err) {
        // Trusted: join again, with what the form still holds.
        if (!offerTrust(joinTrust, url, toAppError(err), () => joinForm.requestSubmit())) fail(err);
      }
    });
  });

  root.replaceChildren(card);
  root.hidden = false;
  ownerName.focus();
}

/** After hosting started: where others connect and the code they need. */
function showHosted(card: HTMLElement, address: string, lan: boolean, invite: string, done: () => void): void {
  const next = h('button', { type: 'button', class: 'primary', testid: 'host-continue' }, 'Continue');
  next.addEventListener('click', () => done());
  const link = inviteLink(address, invite);
  const shown: Node[] = [
    h('h1', {}, 'Your group is running'),
    h(
      'p',
      { class: 'muted' },
      lan
        ? 'Others on your network join with this address and an invite code.'
        : 'Only this computer can reach it: other computers cannot join.',
    ),
    h('div', { class: 'field' }, h('span', {}, 'Address'), h('output', { class: 'code', testid: 'host-address' }, address)),
    h('div', { class: 'field' }, h('span', {}, 'Invite code'), h('output', { class: 'code', testid: 'invite-code' }, invite)),
  ];
  if (lan) {
    shown.push(
      h(
        'div',
        { class: 'field' },
        h('span', {}, 'Or open this link (a phone’s camera reads the code)'),
        h('output', { class: 'code', testid: 'invite-link' }, link),
        qrCanvas(link, 'QR code of the invite link'),
      ),
    );
  }
  shown.push(
    h('p', { class: 'muted small' }, 'You can make more invite codes later from the sidebar.'),
    h('div', { class: 'actions' }, next),
  );
  card.replaceChildren(...shown);
  next.focus();
}

/** The browser's first screen: log in to this server, or register with an invite. */
function showLogin(root: HTMLElement, done: () => void): void {
  const error = h('p', { class: 'error', testid: 'setup-error', role: 'alert', hidden: true });
  const name = h('input', { type: 'text', testid: 'join-name', autocomplete: 'username', required: true, maxlength: 64 });
  const password = h('input', { type: 'password', testid: 'join-password', autocomplete: 'current-password', required: true });
  const invite = h('input', { type: 'text', testid: 'join-invite', autocomplete: 'off' });
  const fromLink = /(?:^|&)invite=([^&]+)/.exec(window.location.hash.slice(1))?.[1];
  if (fromLink !== undefined) invite.value = decodeURIComponent(fromLink);
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'join-submit' }, 'Log in');
  const syncLabel = (): void => setText(submit, invite.value.trim() === '' ? 'Log in' : 'Create account');
  invite.addEventListener('input', syncLabel);
  syncLabel();
  const form = h(
    'form',
    { class: 'stack' },
    h('label', { class: 'field' }, h('span', {}, 'Your name'), name),
    h('label', { class: 'field' }, h('span', {}, 'Password'), password),
    h(
      'label',
      { class: 'field' },
      h('span', {}, 'Invite code ', h('span', { class: 'muted' }, '(when you are new here)')),
      invite,
    ),
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    error.hidden = true;
    const code = invite.value.trim();
    void busy(submit, async () => {
      try {
        await commands.joinServer(window.location.origin, name.value.trim(), password.value, code === '' ? null : code);
        password.value = '';
        // The code is spent: it should not sit in the address bar or the history.
        if (fromLink !== undefined) window.history.replaceState(null, '', window.location.pathname);
        done();
      } catch (err) {
        setText(error, toAppError(err).message);
        error.hidden = false;
      }
    });
  });
  root.replaceChildren(
    h(
      'div',
      { class: 'card setup-card', testid: 'login' },
      h('h1', {}, 'Tidings'),
      h('p', { class: 'muted' }, `Log in to ${window.location.host}, or join it with an invite code.`),
      form,
      error,
    ),
  );
  root.hidden = false;
  name.focus();
}
