// The sidebar's room list (group rooms as "#name", DMs by the peer's name, with unread counts, a
// mention highlight and the peer's presence) and the ways to get a new room: create one, start a
// DM, join from the directory, and (owner) invite someone to the server.

import { errorLine, openDialog, showError, type Dialog } from './dialog';
import { qrCanvas } from './qr';
import { busy, h, setText } from './dom';
import {
  commands,
  platform,
  toAppError,
  type PresenceStatus,
  type Room,
  type RoomId,
  type RoomState,
  type UserId,
  type UserRef,
} from './ipc';

/** How a room is named to people. */
export function roomTitle(room: Room): string {
  if (room.kind === 'group') return `#${room.name ?? `room ${room.id}`}`;
  return room.dm_peer?.name ?? 'Direct message';
}

function sortKey(room: Room): string {
  return (room.kind === 'group' ? room.name : room.dm_peer?.name)?.toLowerCase() ?? '';
}

interface Entry {
  li: HTMLLIElement;
  button: HTMLButtonElement;
  name: HTMLElement;
  badge: HTMLElement;
  dot: HTMLElement | null;
}

export class RoomList {
  readonly element: HTMLElement;
  private readonly filter: HTMLInputElement;
  private readonly groups: HTMLUListElement;
  private readonly dms: HTMLUListElement;
  private readonly groupsEmpty: HTMLElement;
  private readonly dmsEmpty: HTMLElement;
  private entries = new Map<RoomId, Entry>();
  /** The rooms as last rendered, in the list's order: what the filter looks through. */
  private shown: RoomState[] = [];

  constructor(private readonly select: (room: RoomId) => void) {
    this.filter = h('input', {
      type: 'search',
      class: 'room-filter',
      testid: 'room-filter',
      placeholder: 'Filter rooms',
      'aria-label': 'Filter rooms by name',
      autocomplete: 'off',
      spellcheck: 'false',
    });
    this.filter.addEventListener('input', () => this.applyFilter());
    this.filter.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.filter.value !== '') {
        event.preventDefault();
        this.filter.value = '';
        this.applyFilter();
      } else if (event.key === 'Enter') {
        // Enter opens the first room that matches.
        event.preventDefault();
        const first = this.shown.find((room) => this.matches(room));
        if (first !== undefined) this.select(first.id);
      }
    });
    this.groups = h('ul', { class: 'room-group', 'aria-labelledby': 'rooms-heading' });
    this.dms = h('ul', { class: 'room-group', 'aria-labelledby': 'dms-heading' });
    this.groupsEmpty = h('p', { class: 'muted small' }, 'No rooms yet.');
    this.dmsEmpty = h('p', { class: 'muted small' }, 'No direct messages yet.');
    this.element = h(
      'nav',
      { class: 'room-list', testid: 'room-list', 'aria-label': 'Rooms' },
      h('div', { class: 'room-filter-box' }, this.filter),
      h('h2', { id: 'rooms-heading', class: 'sidebar-heading' }, 'Rooms'),
      this.groups,
      this.groupsEmpty,
      h('h2', { id: 'dms-heading', class: 'sidebar-heading' }, 'Direct messages'),
      this.dms,
      this.dmsEmpty,
    );
  }

  /** Brings the list in line with `rooms`, updating entries in place (focus stays put). */
  render(
    rooms: Iterable<RoomState>,
    current: RoomId | null,
    presence: ReadonlyMap<UserId, PresenceStatus>,
  ): void {
    const sorted = [...rooms].sort(
      (a, b) => sortKey(a).localeCompare(sortKey(b)) || a.id - b.id,
    );
    const seen = new Set<RoomId>();
    const groupItems: HTMLLIElement[] = [];
    const dmItems: HTMLLIElement[] = [];
    for (const room of sorted) {
      seen.add(room.id);
      const entry = this.entry(room);
      this.update(entry, room, room.id === current, presence);
      (room.kind === 'group' ? groupItems : dmItems).push(entry.li);
    }
    for (const [id, entry] of this.entries) {
      if (!seen.has(id)) {
        entry.li.remove();
        this.entries.delete(id);
      }
    }
    order(this.groups, groupItems);
    order(this.dms, dmItems);
    this.shown = sorted;
    this.applyFilter();
  }

  /** Whether `room`'s name holds what the filter says (case and a leading `#` or `@` aside). */
  private matches(room: RoomState): boolean {
    const wanted = this.filter.value.trim().toLowerCase().replace(/^[#@]/, '');
    return wanted === '' || sortKey(room).includes(wanted);
  }

  /** Shows the rooms that match the filter, and says so when none does. */
  private applyFilter(): void {
    const filtering = this.filter.value.trim() !== '';
    let groups = 0;
    let dms = 0;
    for (const room of this.shown) {
      const entry = this.entries.get(room.id);
      if (entry === undefined) continue;
      const visible = this.matches(room);
      entry.li.hidden = !visible;
      if (visible && room.kind === 'group') groups += 1;
      if (visible && room.kind === 'dm') dms += 1;
    }
    setText(this.groupsEmpty, filtering ? 'No rooms match.' : 'No rooms yet.');
    setText(this.dmsEmpty, filtering ? 'No direct messages match.' : 'No direct messages yet.');
    this.groupsEmpty.hidden = groups > 0;
    this.dmsEmpty.hidden = dms > 0;
  }

  private entry(room: RoomState): Entry {
    const existing = this.entries.get(room.id);
    const wantsDot = room.kind === 'dm';
    if (existing !== undefined && (existing.dot !== null) === wantsDot) return existing;
    existing?.li.remove();
    const name = h('span', { class: 'room-name' });
    const badge = h('span', { class: 'badge', hidden: true });
    const dot = wantsDot ? h('span', { class: 'presence', 'aria-hidden': 'true' }) : null;
    const button = h(
      'button',
      { type: 'button', class: 'room', testid: `room-${room.id}` },
      dot,
      name,
      badge,
    );
    button.addEventListener('click', () => this.select(room.id));
    const entry: Entry = { li: h('li', {}, button), button, name, badge, dot };
    this.entries.set(room.id, entry);
    return entry;
  }

  private update(
    entry: Entry,
    room: RoomState,
    isCurrent: boolean,
    presence: ReadonlyMap<UserId, PresenceStatus>,
  ): void {
    const { button, name, badge, dot } = entry;
    const title = roomTitle(room);
    setText(name, title);
    button.setAttribute('data-unread', String(room.unread));
    button.setAttribute('data-mentions', String(room.unread_mentions));
    if (isCurrent) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
    button.classList.toggle('unread', room.unread > 0);
    button.classList.toggle('mentioned', room.unread_mentions > 0);

    let label = title;
    if (room.unread_mentions > 0) {
      setText(badge, `@ ${room.unread_mentions}`);
      badge.hidden = false;
      label += `, ${room.unread} unread, ${room.unread_mentions} mentioning you`;
    } else if (room.unread > 0) {
      setText(badge, String(room.unread));
      badge.hidden = false;
      label += `, ${room.unread} unread`;
    } else {
      badge.hidden = true;
    }
    if (dot !== null) {
      const peer = room.dm_peer?.id;
      const status = peer === undefined ? undefined : presence.get(peer);
      dot.classList.toggle('online', status === 'online');
      dot.title = status === 'online' ? 'Online' : status === 'offline' ? 'Offline' : '';
      if (status !== undefined) label += `, ${status}`;
    }
    button.setAttribute('aria-label', label);
  }
}

/** Makes `list` hold `items` in this order, moving only what is out of place. */
function order(list: HTMLElement, items: HTMLElement[]): void {
  let cursor: ChildNode | null = list.firstChild;
  for (const item of items) {
    if (item === cursor) cursor = cursor.nextSibling;
    else list.insertBefore(item, cursor);
  }
  while (cursor !== null) {
    const next = cursor.nextSibling;
    cursor.remove();
    cursor = next;
  }
}

/** Where the dialogs open, and what to do with a room once it is created, opened or joined. */
export interface RoomDialogs {
  host: HTMLElement;
  behind: HTMLElement;
  me: () => UserRef;
  memberOf: (room: RoomId) => boolean;
  opened: (room: RoomState) => void;
}

export function newRoomDialog(ctx: RoomDialogs): Dialog {
  const input = h('input', {
    type: 'text',
    name: 'room-name',
    required: true,
    maxlength: 64,
    autocomplete: 'off',
    placeholder: 'general',
    testid: 'new-room-name',
  });
  const submit = h('button', { type: 'submit', class: 'primary', testid: 'new-room-submit' }, 'Create');
  const error = errorLine();
  const form = h(
    'form',
    { class: 'stack' },
    h('label', { class: 'field' }, h('span', {}, 'Room name'), input),
    error,
    h('div', { class: 'actions' }, submit),
  );
  const dialog = openDialog(ctx.host, ctx.behind, 'Create a room', 'new-room-dialog', form);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = input.value.trim().replace(/^#/, '');
    if (name === '') return;
    void busy(submit, async () => {
      try {
        const room = await commands.createRoom(name);
        dialog.close();
        ctx.opened(room);
      } catch (err) {
        showError(error, err);
      }
    });
  });
  return dialog;
}

/** What a pick-list dialog shows and what picking an entry does. */
interface PickList<T> {
  title: string;
  testid: string;
  label: string;
  loading: string;
  empty: string;
  load: () => Promise<T[]>;
  entry: (item: T) => { text: string; testid: string };
  pick: (item: T) => Promise<RoomState>;
}

/** A dialog listing what `load` finds; picking an entry opens the room it leads to. */
function pickDialog<T>(ctx: RoomDialogs, spec: PickList<T>): Dialog {
  const list = h('ul', { class: 'pick-list', 'aria-label': spec.label });
  const status = h('p', { class: 'muted' }, spec.loading);
  const error = errorLine();
  const dialog = openDialog(ctx.host, ctx.behind, spec.title, spec.testid, status, list, error);
  spec
    .load()
    .then((items) => {
      setText(status, items.length === 0 ? spec.empty : '');
      status.hidden = items.length > 0;
      for (const item of items) {
        const { text, testid } = spec.entry(item);
        const button = h('button', { type: 'button', class: 'pick', testid }, text);
        button.addEventListener('click', () => {
          void busy(button, async () => {
            try {
              const room = await spec.pick(item);
              dialog.close();
              ctx.opened(room);
            } catch (err) {
              showError(error, err);
            }
          });
        });
        list.appendChild(h('li', {}, button));
      }
      list.querySelector('button')?.focus();
    })
    .catch((err: unknown) => {
      status.hidden = true;
      showError(error, err);
    });
  return dialog;
}

export function newDmDialog(ctx: RoomDialogs): Dialog {
  return pickDialog(ctx, {
    title: 'Start a direct message',
    testid: 'new-dm-dialog',
    label: 'People',
    loading: 'Loading people…',
    empty: 'Nobody else is on this server yet.',
    load: async () => {
      const me = ctx.me().id;
      const users = await commands.users();
      return users.filter((u) => u.id !== me).sort((a, b) => a.name.localeCompare(b.name));
    },
    entry: (user) => ({ text: user.name, testid: `dm-user-${user.id}` }),
    pick: (user) => commands.openDm(user.name),
  });
}

export function directoryDialog(ctx: RoomDialogs): Dialog {
  return pickDialog(ctx, {
    title: 'Join a room',
    testid: 'directory-dialog',
    label: 'Rooms you can join',
    loading: 'Loading rooms…',
    empty: 'You are in every room already.',
    load: async () => {
      const rooms = await commands.directory();
      return rooms
        .filter((r) => r.kind === 'group' && !ctx.memberOf(r.id))
        .sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
    },
    entry: (room) => ({ text: roomTitle(room), testid: `directory-${room.id}` }),
    pick: (room) => commands.joinRoom(room.id),
  });
}

/** The link that opens the web app at `server` with the invite `code` filled in. */
export function inviteLink(server: string, code: string): string {
  return `${server.replace(/\/+$/, '')}/#invite=${encodeURIComponent(code)}`;
}

/** Whether only this computer reaches `server`. */
export function isLoopback(server: string): boolean {
  try {
    const host = new URL(server).hostname;
    return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
  } catch {
    return false;
  }
}

export function inviteDialog(ctx: RoomDialogs): Dialog {
  const code = h('output', { class: 'code', testid: 'invite-code' });
  // The server serves the web app too: a link opens it with the code filled in.
  const link = h('output', { class: 'code', testid: 'invite-link' });
  const status = h('p', { class: 'muted' }, 'Creating an invite…');
  const error = errorLine();
  const dialog = openDialog(ctx.host, ctx.behind, 'Invite someone', 'invite-dialog', status, code, link, error);
  code.hidden = true;
  link.hidden = true;
  Promise.all([commands.invite(), commands.status()])
    .then(([{ code: value }, status_]) => {
      setText(
        status,
        platform === 'browser'
          ? 'Give this link to the person you invite, or the code, which they enter when they create their account.'
          : 'Give this code to the person you invite. They enter it under “Join a server” — or they open the link in a browser.',
      );
      setText(code, value);
      code.hidden = false;
      // Hosting on this computer: the address others reach, not the loopback this app uses.
      const server = status_.hosting?.address ?? status_.account?.server;
      if (server !== undefined) {
        const url = inviteLink(server, value);
        setText(link, url);
        link.hidden = false;
        // A phone (or another computer) opens it from the camera; not for this computer only.
        if (!isLoopback(server)) link.after(qrCanvas(url, 'QR code of the invite link'));
      }
    })
    .catch((err: unknown) => {
      status.hidden = true;
      const e = toAppError(err);
      if (e.code === 'forbidden') {
        setText(error, 'Only the owner of this group can invite people.');
        error.hidden = false;
      } else {
        showError(error, err);
      }
    });
  return dialog;
}
