// Settings: this account's sessions (revoke any but this one), lock now, do not disturb, the
// open room's notification level, and how the app connects (the best way the network allows, or
// one transport pinned).

import { busy, h, setText } from './dom';
import {
  alerts,
  commands,
  platform,
  toAppError,
  type Account,
  type HostInfo,
  type NotifyLevel,
  type RoomState,
  type SessionInfo,
  type TransportKind,
} from './ipc';
import { roomTitle } from './rooms';
import { relativeTime } from './time';

export interface SettingsHooks {
  lockNow(): void;
  close(): void;
}

const LEVELS: ReadonlyArray<[NotifyLevel, string]> = [
  ['all', 'All messages'],
  ['mentions', 'Mentions and direct messages'],
  ['nothing', 'Nothing'],
];

/** The connection choices: automatic first, then the ladder from the best to the last resort. */
const TRANSPORTS: ReadonlyArray<[TransportKind | '', string]> = [
  ['', 'Automatic (the best the network allows)'],
  ['web_socket', 'WebSocket'],
  ['sse', 'Server-Sent Events'],
  ['streaming', 'HTTP streaming'],
  // A browser without streaming `fetch` streams through a hidden iframe instead.
  ...(platform === 'browser' ? [['iframe', 'Iframe streaming'] as [TransportKind, string]] : []),
  ['long_polling', 'Long-polling'],
  ['short_polling', 'Short polling'],
];

export class Settings {
  readonly element: HTMLElement;
  private readonly account: HTMLElement;
  private readonly sessionList: HTMLUListElement;
  private readonly sessionStatus: HTMLElement;
  private readonly dnd: HTMLInputElement;
  private readonly autostart: HTMLInputElement;
  private readonly alertsLine: HTMLElement;
  private readonly alertsButton: HTMLButtonElement;
  private readonly roomSection: HTMLElement;
  private readonly roomLabel: HTMLElement;
  private readonly level: HTMLSelectElement;
  private readonly transport: HTMLSelectElement;
  private readonly error: HTMLElement;
  private room: RoomState | null = null;
  private refreshTimer: number | null = null;

  constructor(hooks: SettingsHooks) {
    const close = h('button', { type: 'button', class: 'secondary', testid: 'settings-close' }, 'Back to chat');
    close.addEventListener('click', () => hooks.close());

    this.account = h('div', { class: 'account' });

    const lock = h('button', { type: 'button', class: 'secondary', testid: 'lock-now' }, 'Lock now');
    lock.addEventListener('click', () => hooks.lockNow());

    this.dnd = h('input', { type: 'checkbox', testid: 'dnd-toggle', role: 'switch' });
    this.dnd.addEventListener('change', () => this.changeDnd());
    this.autostart = h('input', { type: 'checkbox', testid: 'autostart-toggle', role: 'switch' });
    this.autostart.addEventListener('change', () => this.changeAutostart());

    // In a browser, notifications need the user's permission, asked only from this button or
    // their first message.
    this.alertsLine = h('span', { class: 'muted small', testid: 'alerts-permission' });
    this.alertsButton = h('button', { type: 'button', class: 'secondary', testid: 'alerts-allow' }, 'Allow notifications');
    this.alertsButton.addEventListener('click', () => {
      void alerts?.ask().then(() => this.showAlerts());
    });

    this.level = h('select', { testid: 'room-level', id: 'room-level' });
    for (const [value, label] of LEVELS) this.level.appendChild(h('option', { value }, label));
    this.level.addEventListener('change', () => this.changeLevel());
    this.roomLabel = h('label', { for: 'room-level' }, 'Notify me about');
    this.roomSection = h(
      'section',
      { class: 'settings-section', 'aria-labelledby': 'settings-room-heading' },
      h('h2', { id: 'settings-room-heading' }, 'This room'),
      h('div', { class: 'field inline' }, this.roomLabel, this.level),
    );

    this.transport = h('select', { testid: 'transport', id: 'transport' });
    for (const [value, label] of TRANSPORTS) this.transport.appendChild(h('option', { value }, label));
    this.transport.addEventListener('change', () => this.changeTransport());

    this.sessionList = h('ul', { class: 'sessions', 'aria-label': 'Sessions' });
    this.sessionStatus = h('p', { class: 'muted' });
    this.error = h('p', { class: 'error', role: 'alert', hidden: true });

    this.element = h(
      'section',
      { class: 'settings', testid: 'settings', 'aria-labelledby': 'settings-heading', hidden: true },
      h('header', { class: 'pane-head' }, h('h1', { id: 'settings-heading' }, 'Settings'), close),
      h(
        'div',
        { class: 'settings-body' },
        this.error,
        h(
          'section',
          { class: 'settings-section', 'aria-labelledby': 'settings-account-heading' },
          h('h2', { id: 'settings-account-heading' }, 'Account'),
          this.account,
          h('div', { class: 'actions start' }, lock),
        ),
        h(
          'section',
          { class: 'settings-section', 'aria-labelledby': 'settings-notify-heading' },
          h('h2', { id: 'settings-notify-heading' }, 'Notifications'),
          h('label', { class: 'check' }, this.dnd, h('span', {}, 'Do not disturb')),
          h('p', { class: 'muted small' }, 'While on, no desktop alerts are shown. Unread counts still update.'),
          alerts === null ? null : h('div', { class: 'field inline' }, this.alertsLine, this.alertsButton),
        ),
        this.roomSection,
        platform === 'browser'
          ? null
          : h(
              'section',
              { class: 'settings-section', 'aria-labelledby': 'settings-startup-heading' },
              h('h2', { id: 'settings-startup-heading' }, 'Start-up'),
              h('label', { class: 'check' }, this.autostart, h('span', {}, 'Start Tidings when I log in')),
              h(
                'p',
                { class: 'muted small' },
                'It starts in the tray, without a window: alerts come, and a group this computer hosts is served.',
              ),
            ),
        h(
          'section',
          { class: 'settings-section', 'aria-labelledby': 'settings-connection-heading' },
          h('h2', { id: 'settings-connection-heading' }, 'Connection'),
          h('div', { class: 'field inline' }, h('label', { for: 'transport' }, 'Connect with'), this.transport),
          h(
            'p',
            { class: 'muted small' },
            'Automatic tries the WebSocket first and falls back as far as a proxy or firewall needs, moving back up when it can.',
          ),
        ),
        h(
          'section',
          { class: 'settings-section', 'aria-labelledby': 'settings-sessions-heading' },
          h('h2', { id: 'settings-sessions-heading' }, 'Signed-in devices'),
          this.sessionStatus,
          this.sessionList,
        ),
      ),
    );
  }

  get isOpen(): boolean {
    return !this.element.hidden;
  }

  setAccount(account: Account, hosting: HostInfo | null): void {
    this.account.replaceChildren(
      h('p', {}, 'Signed in as ', h('strong', {}, account.user.name), ' on ', h('span', { class: 'mono' }, account.server)),
    );
    if (hosting !== null) {
      this.account.appendChild(
        h(
          'p',
          { class: 'muted small' },
          'This computer hosts the group at ',
          h('span', { class: 'mono' }, hosting.address),
          hosting.lan ? ' (open to your network).' : ' (this computer only).',
        ),
      );
    }
  }

  setDnd(on: boolean): void {
    this.dnd.checked = on;
  }

  /** Shows the panel and loads what it lists. */
  open(room: RoomState | null): void {
    this.element.hidden = false;
    this.error.hidden = true;
    this.setRoom(room);
    void this.loadSessions();
    void this.loadTransport();
    this.showAlerts();
    if (platform !== 'browser') {
      commands
        .autostart()
        .then((on) => (this.autostart.checked = on))
        .catch((err: unknown) => this.showError(err));
    }
    // Keep "last seen" fresh while the panel is open.
    if (this.refreshTimer !== null) window.clearInterval(this.refreshTimer);
    this.refreshTimer = window.setInterval(() => void this.loadSessions(), 30_000);
  }

  close(): void {
    this.element.hidden = true;
    if (this.refreshTimer !== null) window.clearInterval(this.refreshTimer);
    this.refreshTimer = null;
  }

  /** The room whose level the panel shows (the open room). */
  setRoom(room: RoomState | null): void {
    this.room = room;
    this.roomSection.hidden = room === null;
    if (room === null) return;
    setText(this.roomLabel, `Notify me about ${roomTitle(room)}`);
    this.level.disabled = true;
    commands
      .roomLevel(room.id)
      .then((level) => {
        if (this.room?.id !== room.id) return;
        // No level of its own: the default, which is every message.
        this.level.value = level ?? 'all';
        this.level.disabled = false;
      })
      .catch((err: unknown) => {
        this.level.disabled = false;
        this.showError(err);
      });
  }

  private showAlerts(): void {
    if (alerts === null) return;
    const permission = alerts.permission();
    const text: Record<typeof permission, string> = {
      granted: 'This browser shows notifications.',
      default: 'This browser has not been allowed to show notifications yet.',
      denied: 'This browser blocks notifications from Tidings; allow them in its site settings.',
      unsupported: 'This browser shows notifications only on a secure (https) page.',
    };
    setText(this.alertsLine, text[permission]);
    this.alertsButton.hidden = permission !== 'default';
  }

  private changeLevel(): void {
    const room = this.room;
    if (room === null) return;
    const level = this.level.value as NotifyLevel;
    commands.setRoomLevel(room.id, level).catch((err: unknown) => this.showError(err));
  }

  private async loadTransport(): Promise<void> {
    try {
      this.transport.value = (await commands.transport()) ?? '';
    } catch (err) {
      this.showError(err);
    }
  }

  private changeTransport(): void {
    const value = this.transport.value;
    const kind = value === '' ? null : (value as TransportKind);
    commands.setTransport(kind).catch((err: unknown) => this.showError(err));
  }

  private changeDnd(): void {
    const on = this.dnd.checked;
    commands.setDnd(on).catch((err: unknown) => {
      this.dnd.checked = !on;
      this.showError(err);
    });
  }

  private changeAutostart(): void {
    const on = this.autostart.checked;
    commands.setAutostart(on).catch((err: unknown) => {
      this.autostart.checked = !on;
      this.showError(err);
    });
  }

  private showError(err: unknown): void {
    setText(this.error, toAppError(err).message);
    this.error.hidden = false;
  }

  private async loadSessions(): Promise<void> {
    if (this.sessionList.childElementCount === 0) setText(this.sessionStatus, 'Loading…');
    try {
      const sessions = await commands.sessions();
      this.renderSessions(sessions);
    } catch (err) {
      setText(this.sessionStatus, '');
      // While locked the list cannot be fetched; the lock screen says why.
      if (toAppError(err).code !== 'locked') this.showError(err);
    }
  }

  private renderSessions(sessions: SessionInfo[]): void {
    setText(this.sessionStatus, sessions.length === 0 ? 'No sessions.' : '');
    this.sessionStatus.hidden = sessions.length > 0;
    const sorted = [...sessions].sort(
      (a, b) => Number(b.current) - Number(a.current) || b.last_seen_at - a.last_seen_at,
    );
    const now = Date.now();
    this.sessionList.replaceChildren(
      ...sorted.map((s) => {
        const meta = h(
          'div',
          { class: 'session-meta' },
          h('span', { class: 'session-device' }, s.device === '' ? 'Unnamed device' : s.device),
          s.current ? h('span', { class: 'tag' }, 'this device') : null,
          h(
            'span',
            { class: 'muted small' },
            `Last seen ${relativeTime(s.last_seen_at, now)}`,
          ),
        );
        let revoke: HTMLButtonElement | null = null;
        if (!s.current) {
          const button = h(
            'button',
            {
              type: 'button',
              class: 'secondary danger',
              testid: `revoke-${s.id}`,
              'aria-label': `Revoke ${s.device}`,
            },
            'Revoke',
          );
          button.addEventListener('click', () => {
            void busy(button, async () => {
              try {
                await commands.revoke(s.id);
                await this.loadSessions();
              } catch (err) {
                this.showError(err);
              }
            });
          });
          revoke = button;
        }
        return h(
          'li',
          { class: 'session', testid: 'session-row', 'data-current': s.current ? 'true' : 'false' },
          meta,
          revoke,
        );
      }),
    );
  }
}
