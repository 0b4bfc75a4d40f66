// The group's administration, for its owners: the server's status, the members (disable, enable,
// reset a password, promote, demote), invites (made with an expiry and a use count, listed,
// revoked) and the audit log of all of it. One `admin` command loads everything; each action
// reloads it, so what the screen shows is what the server says.

import { busy, h, setText } from './dom';
import {
  commands,
  platform,
  toAppError,
  type AdminInvite,
  type AdminMember,
  type AdminOverview,
  type AuditEntry,
  type MemberAction,
  type ServerStatus,
  type UserRef,
} from './ipc';
import { qrCanvas } from './qr';
import { inviteLink, isLoopback } from './rooms';
import { fullTime, relativeTime } from './time';

export interface AdminHooks {
  close(): void;
  /** The address others join at: the hosted group's, or the server this app talks to. */
  server(): Promise<string | null>;
}

/** How long a new invite lasts: hours, or null for until revoked. */
const EXPIRIES: ReadonlyArray<[string, string]> = [
  ['1', 'an hour'],
  ['24', 'a day'],
  ['168', 'a week'],
  ['720', '30 days'],
  ['', 'until revoked'],
];

const TRANSPORT_NAMES: Record<string, string> = {
  websocket: 'WebSocket',
  stream: 'streaming (SSE, HTTP, iframe)',
  poll: 'polling',
  feed: 'event feed',
};

export class AdminPanel {
  readonly element: HTMLElement;
  private readonly status: HTMLElement;
  private readonly members: HTMLUListElement;
  private readonly shownOnce: HTMLElement;
  private readonly invites: HTMLUListElement;
  private readonly created: HTMLElement;
  private readonly audit: HTMLOListElement;
  private readonly error: HTMLElement;
  private readonly uses: HTMLInputElement;
  private readonly expiry: HTMLSelectElement;
  private me: number;

  constructor(me: UserRef, private readonly hooks: AdminHooks) {
    this.me = me.id;
    const close = h('button', { type: 'button', class: 'secondary', testid: 'admin-close' }, 'Back to chat');
    close.addEventListener('click', () => hooks.close());
    this.error = h('p', { class: 'error', role: 'alert', testid: 'admin-error', hidden: true });
    this.status = h('dl', { class: 'facts', testid: 'admin-status' });
    this.members = h('ul', { class: 'sessions', 'aria-label': 'Members', testid: 'admin-members' });
    this.shownOnce = h('div', { class: 'shown-once', testid: 'admin-password', hidden: true });
    this.invites = h('ul', { class: 'sessions', 'aria-label': 'Invites', testid: 'admin-invites' });
    this.created = h('div', { class: 'shown-once', testid: 'admin-created-invite', hidden: true });
    this.audit = h('ol', { class: 'audit', 'aria-label': 'Audit log', testid: 'admin-audit' });

    this.uses = h('input', { type: 'number', id: 'invite-uses', min: 1, max: 1000, value: 1, testid: 'invite-uses' });
    this.expiry = h('select', { id: 'invite-expiry', testid: 'invite-expiry' });
    for (const [value, label] of EXPIRIES) this.expiry.appendChild(h('option', { value }, label));
    this.expiry.value = '168';
    const create = h('button', { type: 'button', class: 'primary', testid: 'invite-create' }, 'Create invite');
    create.addEventListener('click', () => void busy(create, () => this.createInvite()));

    const section = (id: string, title: string, ...content: (Node | null)[]): HTMLElement =>
      h(
        'section',
        { class: 'settings-section', 'aria-labelledby': `admin-${id}-heading` },
        h('h2', { id: `admin-${id}-heading` }, title),
        ...content,
      );

    this.element = h(
      'section',
      { class: 'settings admin', testid: 'admin', 'aria-labelledby': 'admin-heading', hidden: true },
      h('header', { class: 'pane-head' }, h('h1', { id: 'admin-heading' }, 'Manage the group'), close),
      h(
        'div',
        { class: 'settings-body' },
        this.error,
        section('status', 'Server', this.status),
        section(
          'members',
          'Members',
          h(
            'p',
            { class: 'muted small' },
            'Disabling a member or resetting their password signs them out everywhere at once.',
          ),
          this.shownOnce,
          this.members,
        ),
        section(
          'invites',
          'Invites',
          h(
            'div',
            { class: 'field inline' },
            h('label', { for: 'invite-uses' }, 'For'),
            this.uses,
            h('label', { for: 'invite-expiry' }, 'people, valid for'),
            this.expiry,
            create,
          ),
          this.created,
          this.invites,
        ),
        section('audit', 'Audit log', this.audit),
      ),
    );
  }

  get isOpen(): boolean {
    return !this.element.hidden;
  }

  open(): void {
    this.element.hidden = false;
    this.error.hidden = true;
    this.shownOnce.hidden = true;
    this.created.hidden = true;
    void this.load();
  }

  close(): void {
    this.element.hidden = true;
    // What was shown once is not left on a screen nobody looks at.
    this.shownOnce.replaceChildren();
    this.created.replaceChildren();
  }

  private async load(): Promise<void> {
    try {
      this.render(await commands.admin());
    } catch (err) {
      this.showError(err);
    }
  }

  private render(overview: AdminOverview): void {
    this.renderStatus(overview.status);
    this.members.replaceChildren(...overview.members.map((m) => this.renderMember(m)));
    this.invites.replaceChildren(...overview.invites.map((i) => this.renderInvite(i)));
    if (overview.invites.length === 0) this.invites.appendChild(h('li', { class: 'session muted' }, 'No invites yet.'));
    this.audit.replaceChildren(...overview.audit.map((e) => renderAudit(e)));
    if (overview.audit.length === 0) this.audit.appendChild(h('li', { class: 'muted' }, 'Nothing done yet.'));
  }

  private renderStatus(status: ServerStatus): void {
    const connections = status.connections
      .map((c) => `${c.count} ${TRANSPORT_NAMES[c.transport] ?? c.transport}`)
      .join(' · ');
    const fact = (term: string, value: string, testid: string): HTMLElement[] => [
      h('dt', {}, term),
      h('dd', { testid }, value),
    ];
    this.status.replaceChildren(
      ...fact('Version', status.version, 'status-version'),
      ...fact('Running for', duration(status.uptime_secs), 'status-uptime'),
      ...fact('Database', `${bytes(status.database_bytes)} (${status.database === 'postgres' ? 'PostgreSQL' : 'SQLite'})`, 'status-database'),
      ...fact('Connections', connections, 'status-connections'),
    );
  }

  private renderMember(member: AdminMember): HTMLElement {
    const name = member.user.name;
    const disabled = member.disabled_at !== undefined;
    const meta = h(
      'div',
      { class: 'session-meta' },
      h('span', { class: 'session-device' }, name),
      member.role === 'owner' ? h('span', { class: 'tag' }, 'owner') : null,
      disabled ? h('span', { class: 'tag danger', testid: 'member-disabled' }, 'disabled') : null,
      member.user.id === this.me ? h('span', { class: 'tag' }, 'you') : null,
      h(
        'span',
        { class: 'muted small' },
        `${member.live_sessions} signed-in ${member.live_sessions === 1 ? 'device' : 'devices'} · ` +
          (member.last_seen_at === undefined ? 'never seen' : `last seen ${relativeTime(member.last_seen_at)}`),
      ),
    );
    const actions = h('div', { class: 'row-actions' });
    // An owner does not disable, demote or reset themself: another owner (or the host) can.
    if (member.user.id !== this.me) {
      const button = (action: MemberAction, label: string, danger = false): HTMLButtonElement => {
        const b = h(
          'button',
          {
            type: 'button',
            class: danger ? 'secondary danger' : 'secondary',
            testid: `member-${action}`,
            'aria-label': `${label} ${name}`,
          },
          label,
        );
        b.addEventListener('click', () => void busy(b, () => this.manage(member, action)));
        return b;
      };
      actions.append(
        disabled ? button('enable', 'Enable') : button('disable', 'Disable', true),
        button('reset_password', 'Reset password'),
        member.role === 'owner' ? button('demote', 'Make member') : button('promote', 'Make owner'),
      );
    }
    return h(
      'li',
      { class: 'session', testid: 'member-row', 'data-name': name, 'data-disabled': disabled ? 'true' : 'false' },
      meta,
      actions,
    );
  }

  private async manage(member: AdminMember, action: MemberAction): Promise<void> {
    this.error.hidden = true;
    try {
      const done = await commands.manageMember(member.user.id, action);
      if (done.password !== undefined) {
        this.shownOnce.replaceChildren(
          h('p', {}, `${member.user.name}’s new password — shown this once; hand it over:`),
          h('output', { class: 'code', testid: 'new-password' }, done.password),
        );
        this.shownOnce.hidden = false;
      }
      await this.load();
    } catch (err) {
      this.showError(err);
    }
  }

  private renderInvite(invite: AdminInvite): HTMLElement {
    const now = Date.now();
    const state =
      invite.revoked_at !== undefined
        ? 'revoked'
        : invite.uses >= invite.max_uses
          ? 'used up'
          : invite.expires_at !== undefined && invite.expires_at <= now
            ? 'expired'
            : 'open';
    const by = invite.created_by === undefined ? 'the host' : invite.created_by.name;
    const expiry =
      invite.expires_at === undefined
        ? 'never expires'
        : invite.expires_at <= now
          ? `expired ${fullTime(invite.expires_at)}`
          : `expires ${fullTime(invite.expires_at)}`;
    const meta = h(
      'div',
      { class: 'session-meta' },
      h('span', { class: 'session-device' }, `Invite ${invite.id}`),
      h('span', { class: state === 'open' ? 'tag' : 'tag muted', testid: 'invite-state' }, state),
      h(
        'span',
        { class: 'muted small', testid: 'invite-uses-shown' },
        `used ${invite.uses} of ${invite.max_uses} · made by ${by} ${relativeTime(invite.created_at, now)} · ${expiry}`,
      ),
    );
    let revoke: HTMLButtonElement | null = null;
    if (state === 'open') {
      revoke = h(
        'button',
        { type: 'button', class: 'secondary danger', testid: 'invite-revoke', 'aria-label': `Revoke invite ${invite.id}` },
        'Revoke',
      );
      const button = revoke;
      button.addEventListener('click', () =>
        void busy(button, async () => {
          try {
            await commands.revokeInvite(invite.id);
            await this.load();
          } catch (err) {
            this.showError(err);
          }
        }),
      );
    }
    return h('li', { class: 'session', testid: 'invite-row', 'data-id': invite.id, 'data-state': state }, meta, revoke);
  }

  private async createInvite(): Promise<void> {
    this.error.hidden = true;
    const uses = Number(this.uses.value);
    if (!Number.isInteger(uses) || uses < 1 || uses > 1000) {
      this.showError(new Error('An invite is for 1 to 1000 people.'));
      return;
    }
    const hours = this.expiry.value === '' ? null : Number(this.expiry.value);
    try {
      const made = await commands.createInvite(hours, uses);
      const server = await this.hooks.server();
      const code = h('output', { class: 'code', testid: 'created-code' }, made.code);
      this.created.replaceChildren(
        h('p', {}, 'The new invite — its code is shown this once:'),
        code,
      );
      if (server !== null) {
        const url = inviteLink(server, made.code);
        this.created.appendChild(h('output', { class: 'code', testid: 'created-link' }, url));
        if (platform !== 'browser' && !isLoopback(server)) {
          this.created.appendChild(qrCanvas(url, 'QR code of the invite link'));
        }
      }
      this.created.hidden = false;
      await this.load();
    } catch (err) {
      this.showError(err);
    }
  }

  private showError(err: unknown): void {
    setText(this.error, toAppError(err).message);
    this.error.hidden = false;
  }
}

/** One audit entry as a sentence: who did what, to whom, when. */
function renderAudit(entry: AuditEntry): HTMLElement {
  const who = entry.actor === undefined ? 'The host' : entry.actor.name;
  const whom = entry.user?.name ?? 'someone';
  const what: Record<string, string> = {
    disabled: `disabled ${whom}`,
    enabled: `enabled ${whom}`,
    password_reset: `reset the password of ${whom}`,
    role_changed: `made ${whom} ${entry.role === 'owner' ? 'an owner' : 'a member'}`,
    invite_created: `created invite ${entry.invite ?? ''}`,
    invite_revoked: `revoked invite ${entry.invite ?? ''}`,
    message_deleted: `deleted a message by ${whom}`,
  };
  return h(
    'li',
    { class: 'audit-entry', testid: 'audit-entry', 'data-action': entry.action },
    h('time', { class: 'muted small', title: fullTime(entry.at) }, relativeTime(entry.at)),
    ' ',
    `${who} ${what[entry.action] ?? entry.action}`,
  );
}

/** "3 days 4 h", "2 h 5 min", "40 s". */
function duration(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days > 0) return `${days} ${days === 1 ? 'day' : 'days'} ${hours} h`;
  if (hours > 0) return `${hours} h ${minutes} min`;
  if (minutes > 0) return `${minutes} min`;
  return `${seconds} s`;
}

/** "12.3 MB", "840 kB", "512 B". */
function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${Math.round(n / 1e3)} kB`;
  return `${n} B`;
}
