// The chat window: the sidebar of rooms, the open room's messages, the composer, settings. It
// holds what the UI knows (rooms, their histories, presence) and keeps it in step with the
// shell's events; the views in rooms.ts, timeline.ts, composer.ts, typing.ts, connection.ts and
// settings.ts only draw.

import { showUnread } from './badge';
import { ConnectionBar } from './connection';
import { Composer } from './composer';
import { closeDialog, openDialog } from './dialog';
import { h, setText } from './dom';
import { RoomHistory } from './history';
import {
  commands,
  on,
  toAppError,
  type Account,
  type Attachment,
  type AppStatus,
  type HistoryPage,
  type LockCause,
  type Message,
  type MessageId,
  type PresenceStatus,
  type RoomId,
  type RoomState,
  type UserId,
} from './ipc';
import { Notice } from './notice';
import { directoryDialog, inviteDialog, newDmDialog, newRoomDialog, roomTitle, RoomList, type RoomDialogs } from './rooms';
import { SearchPanel } from './search';
import { Settings } from './settings';
import { AdminPanel } from './admin';
import { Timeline } from './timeline';
import { offerTrust } from './trust';
import { TypingIndicator } from './typing';

/** Messages per history page. */
const PAGE = 50;
/** The most older pages a jump to a quoted message loads. */
const JUMP_PAGES = 20;
/** The User Timing mark of the chat's first usable moment. */
const INTERACTIVE_MARK = 'tidings:interactive';
/** After an older page brought nothing new (offline, say), wait this long before asking again. */
const OLDER_PAUSE_MS = 5000;
const LAST_ROOM_KEY = 'tidings.last-room';

/** What the chat needs of the lock screen, which lives outside it. */
export interface ChatLock {
  isLocked(): boolean;
  /** Covers the window now. */
  lock(cause: LockCause): void;
}

export class Chat {
  private readonly account: Account;
  private rooms = new Map<RoomId, RoomState>();
  private histories = new Map<RoomId, RoomHistory>();
  private presence = new Map<UserId, PresenceStatus>();
  private current: RoomId | null = null;
  /** `start` has run; the chat has been usable once (`markInteractive`). */
  private started = false;
  private interactive = false;
  private windowFocused = document.hasFocus();
  /** The room last reported with `set_focused_room`, to report only changes. */
  private reportedFocus: RoomId | null | undefined = undefined;

  private readonly layout: HTMLElement;
  private readonly conversation: HTMLElement;
  private readonly title: HTMLElement;
  private readonly subtitle: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly roomList: RoomList;
  private readonly timeline: Timeline;
  private readonly composer: Composer;
  private readonly typing: TypingIndicator;
  private readonly connection: ConnectionBar;
  /** How many connection states the shell has announced since `start`. */
  private stateEvents = 0;
  private readonly settings: Settings;
  private readonly admin: AdminPanel;
  /** Shown to owners only. */
  private readonly adminButton: HTMLButtonElement;
  private readonly search: SearchPanel;
  /** The first page of each room being loaded, for a jump to wait on. */
  private readonly firstPages = new Map<RoomId, Promise<void>>();
  private readonly notice: Notice;
  private readonly dialogs: RoomDialogs;

  constructor(
    root: HTMLElement,
    status: AppStatus,
    private readonly lock: ChatLock,
  ) {
    if (status.account === null) throw new Error('the chat needs an account');
    this.account = status.account;
    const me = this.account.user;

    this.notice = new Notice();
    this.connection = new ConnectionBar();
    this.connection.set(status.state);
    this.roomList = new RoomList((room) => {
      // Picking a room from the sidebar always shows it, even from settings, admin or search.
      this.closeSettings();
      this.closeAdmin();
      this.closeSearch();
      this.select(room);
    });
    this.typing = new TypingIndicator();
    this.typing.setMe(me.id);
    this.timeline = new Timeline({
      openLink: (url) => {
        commands.openLink(url).catch((err: unknown) => this.notice.show(toAppError(err).message));
      },
      dismiss: (row) => {
        if (this.current === null || row.clientId === null) return;
        const history = this.histories.get(this.current);
        if (history?.dropPending(row.clientId) === true) this.timeline.changed(history);
      },
      react: (row, emoji, on) => {
        if (row.id !== null) void this.changeMessage(commands.react(row.id, emoji, on));
      },
      edit: (row, body) => {
        if (row.id === null || this.current === null) return;
        const history = this.histories.get(this.current);
        if (history?.setEditing(row.id, body !== null) === true) this.timeline.changed(history);
        if (body === null) this.composer.focus();
      },
      saveEdit: (row, body) => {
        if (row.id === null) return;
        const id = row.id;
        if (body.trim() === '') {
          this.notice.show('A message cannot be empty: delete it instead.');
          return;
        }
        void this.changeMessage(commands.editMessage(id, body)).then((saved) => {
          if (saved) this.composer.focus();
        });
      },
      remove: (row) => {
        if (row.id !== null) void this.changeMessage(commands.deleteMessage(row.id));
      },
      reply: (row) => {
        if (row.id !== null) this.composer.replyingTo(row.id, row.author, row.body);
      },
      jump: (id) => void this.jumpTo(id),
      needOlder: (history) => void this.loadOlder(history),
      atBottom: () => this.markRead(),
    });
    this.timeline.setMe(me.id);
    this.composer = new Composer({
      send: (room, body, replyTo, attachments) => this.send(room, body, replyTo, attachments),
      notice: (text) => this.notice.show(text),
    });
    this.settings = new Settings({
      lockNow: () => this.lockNow(),
      close: () => this.closeSettings(),
    });
    this.admin = new AdminPanel(me, {
      close: () => this.closeAdmin(),
      server: async () => {
        // Hosting on this computer: the address others reach, not the loopback this app uses.
        const now = await commands.status();
        return now.hosting?.address ?? now.account?.server ?? null;
      },
    });
    this.search = new SearchPanel({
      open: (message) => void this.openFound(message),
      close: () => this.closeSearch(),
      room: (id) => this.rooms.get(id),
    });
    this.settings.setAccount(this.account, status.hosting);
    this.settings.setDnd(status.dnd);

    // Sidebar.
    const settingsButton = h(
      'button',
      { type: 'button', class: 'icon-button', testid: 'settings-button', 'aria-label': 'Settings', title: 'Settings' },
      '⚙',
    );
    settingsButton.addEventListener('click', () =>
      this.settings.isOpen ? this.closeSettings() : this.openSettings(),
    );
    const searchButton = h(
      'button',
      {
        type: 'button',
        class: 'icon-button search-button',
        testid: 'search-button',
        'aria-label': 'Search messages',
        title: 'Search messages (Ctrl+Shift+F)',
      },
      '⌕',
    );
    searchButton.addEventListener('click', () => (this.search.isOpen ? this.closeSearch() : this.openSearch()));
    document.addEventListener('keydown', (event) => {
      if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === 'f') {
        event.preventDefault();
        if (!this.lock.isLocked()) this.openSearch();
      }
    });
    const newRoom = h('button', { type: 'button', class: 'side-action', testid: 'new-room' }, '+ New room');
    const browse = h('button', { type: 'button', class: 'side-action', testid: 'browse-rooms' }, 'Browse rooms');
    const newDm = h('button', { type: 'button', class: 'side-action', testid: 'new-dm' }, '+ Direct message');
    const invite = h('button', { type: 'button', class: 'side-action', testid: 'invite-button' }, 'Invite people');
    this.adminButton = h(
      'button',
      { type: 'button', class: 'side-action', testid: 'admin-button', hidden: true },
      'Manage the group',
    );
    this.adminButton.addEventListener('click', () => (this.admin.isOpen ? this.closeAdmin() : this.openAdmin()));
    this.layout = h('div', { class: 'layout' });
    this.dialogs = {
      host: root,
      behind: this.layout,
      me: () => this.account.user,
      memberOf: (room) => this.rooms.has(room),
      opened: (room) => this.opened(room),
    };
    newRoom.addEventListener('click', () => newRoomDialog(this.dialogs));
    browse.addEventListener('click', () => directoryDialog(this.dialogs));
    newDm.addEventListener('click', () => newDmDialog(this.dialogs));
    invite.addEventListener('click', () => inviteDialog(this.dialogs));

    const sidebar = h(
      'aside',
      { class: 'sidebar' },
      h(
        'header',
        { class: 'sidebar-head' },
        h('div', { class: 'me' }, h('span', { class: 'app-name' }, 'Tidings'), h('span', { class: 'muted small' }, me.name)),
        h('div', { class: 'head-actions' }, searchButton, settingsButton),
      ),
      this.connection.element,
      this.roomList.element,
      // The owners' button comes first: it appears once the server has said who the user is,
      // and above the others it moves none of them from under the pointer.
      h('div', { class: 'sidebar-actions' }, this.adminButton, newRoom, browse, newDm, invite),
    );

    // The open room.
    this.title = h('h1', { class: 'room-title', id: 'room-title' });
    this.subtitle = h('span', { class: 'muted small' });
    this.empty = h(
      'div',
      { class: 'empty' },
      h('p', {}, 'Pick a room on the left, or create one.'),
    );
    this.conversation = h(
      'main',
      { class: 'conversation', 'aria-labelledby': 'room-title' },
      h('header', { class: 'pane-head' }, h('div', { class: 'titles' }, this.title, this.subtitle)),
      h('div', { class: 'timeline-wrap' }, this.timeline.element, this.timeline.jumpButton, this.empty),
      this.typing.element,
      this.composer.element,
    );

    this.layout.append(sidebar, this.conversation, this.settings.element, this.admin.element, this.search.element);
    root.replaceChildren(this.layout, this.notice.element);
    this.showRoomHead();
  }

  /** Subscribes to the shell's events, then loads rooms and the outbox. */
  async start(): Promise<void> {
    await Promise.all([
      on('state', (state) => {
        this.stateEvents += 1;
        this.connection.set(state);
        // Back online (after an unlock, say): the role may have changed meanwhile.
        if (state.state === 'online') this.refreshRole();
      }),
      on('rooms', (rooms) => this.setRooms(rooms)),
      on('message', (message) => this.onMessage(message)),
      on('changed', (message) => this.onChanged(message)),
      on('sent', ({ client_id, room, message_id }) => {
        const history = this.history(room);
        if (history.acked(client_id, message_id)) this.timeline.changed(history);
      }),
      on('send_failed', ({ client_id, room, error }) => {
        const history = this.history(room);
        if (history.failed(client_id, error.message)) this.timeline.changed(history);
        this.notice.show(`A message to ${this.titleOf(room)} was not sent: ${error.message}`);
      }),
      on('typing', ({ room, user }) => this.typing.typing(room, user)),
      on('presence', ({ user, status }) => {
        this.presence.set(user.id, status);
        this.renderRooms();
        this.showRoomHead();
      }),
      on('online', (users) => {
        this.presence.clear();
        for (const id of users) this.presence.set(id, 'online');
        this.renderRooms();
        this.showRoomHead();
      }),
      on('read', ({ room, message_id }) => this.onRead(room, message_id)),
      on('open_room', ({ room }) => void this.openRoom(room)),
      on('dnd', (dnd) => this.settings.setDnd(dnd)),
      // The server showed a certificate this computer does not trust (it changed since it was
      // trusted, say): the chat waits until the person compares it and trusts it, or not.
      on('untrusted', ({ server, error }) => {
        const slot = h('div', {});
        const dialog = openDialog(this.dialogs.host, this.dialogs.behind, 'The connection is on hold', 'untrusted-dialog', slot);
        offerTrust(slot, server, error, () => dialog.close());
      }),
    ]);

    window.addEventListener('focus', () => this.setWindowFocused(true));
    window.addEventListener('blur', () => this.setWindowFocused(false));
    document.addEventListener('visibilitychange', () =>
      this.setWindowFocused(document.visibilityState === 'visible' && document.hasFocus()),
    );

    try {
      const eventsBefore = this.stateEvents;
      const [status, rooms, outbox] = await Promise.all([
        commands.status(),
        commands.rooms(),
        commands.outbox(),
      ]);
      // A state event that came while these were read is newer than the status read with them.
      if (this.stateEvents === eventsBefore) this.connection.set(status.state);
      this.settings.setDnd(status.dnd);
      for (const item of outbox) this.history(item.room).addPending(item, this.account.user);
      this.setRooms(rooms);
    } catch (err) {
      this.notice.show(toAppError(err).message);
    }
    if (this.current === null) {
      const first = this.initialRoom();
      if (first !== null) this.select(first);
    }
    this.syncFocus();
    this.started = true;
    this.markInteractive();
    this.refreshRole();
  }

  /** Asks the server what the user now is: an owner administers the group and may delete anyone's
   * message. Until it answers (or if it cannot), the user is treated as a member. */
  private refreshRole(): void {
    commands
      .me()
      .then((me) => {
        const owner = me.role === 'owner';
        this.adminButton.hidden = !owner;
        this.timeline.setMayDeleteAny(owner);
        if (!owner) this.closeAdmin();
      })
      .catch(() => undefined);
  }

  /** Marks (User Timing) the moment the chat is first usable: started, and the open room's newest
   * page drawn. `tidings-bench` reads it to time the page's start. */
  private markInteractive(): void {
    if (this.interactive || !this.started) return;
    const history = this.current === null ? undefined : this.histories.get(this.current);
    if (history !== undefined && (!history.started || history.loading)) return;
    this.interactive = true;
    performance.mark(INTERACTIVE_MARK);
  }

  /** The lock screen went up: save the draft and stop telling the shell a room is looked at. */
  suspend(): void {
    this.composer.flush();
    this.timeline.freeze();
    this.syncFocus();
  }

  /** The lock screen went away: everything is as it was. */
  resume(): void {
    this.timeline.thaw();
    this.syncFocus();
    if (!this.settings.isOpen && !this.admin.isOpen) this.composer.focus();
  }

  // ---- rooms ----

  private initialRoom(): RoomId | null {
    try {
      const saved = Number(window.localStorage.getItem(LAST_ROOM_KEY));
      if (this.rooms.has(saved)) return saved;
    } catch {
      // Storage may be unavailable; the first room will do.
    }
    const sorted = [...this.rooms.values()].sort(
      (a, b) => Number(a.kind === 'dm') - Number(b.kind === 'dm') || roomTitle(a).localeCompare(roomTitle(b)),
    );
    return sorted[0]?.id ?? null;
  }

  private setRooms(rooms: RoomState[]): void {
    const next = new Map<RoomId, RoomState>();
    for (const room of rooms) next.set(room.id, room);
    this.rooms = next;
    if (this.current !== null && !next.has(this.current)) {
      this.current = null;
      this.select(this.initialRoom());
    } else if (this.current === null && next.size > 0) {
      this.select(this.initialRoom());
    }
    this.renderRooms();
    this.showRoomHead();
    this.markRead();
  }

  private renderRooms(): void {
    this.roomList.render(this.rooms.values(), this.current, this.presence);
    let unread = 0;
    let mention = false;
    for (const room of this.rooms.values()) {
      unread += room.unread;
      mention ||= room.unread_mentions > 0;
    }
    showUnread(unread, mention);
  }

  private titleOf(room: RoomId): string {
    const state = this.rooms.get(room);
    return state === undefined ? 'a room' : roomTitle(state);
  }

  /** A room was created, opened (DM) or joined from a dialog. */
  private opened(room: RoomState): void {
    if (!this.rooms.has(room.id)) this.rooms.set(room.id, room);
    this.select(room.id);
    this.composer.focus();
  }

  /** `open_room`: a notification was clicked, or the tray asked. */
  private async openRoom(room: RoomId): Promise<void> {
    closeDialog();
    if (!this.rooms.has(room)) {
      try {
        this.setRooms(await commands.rooms());
      } catch (err) {
        this.notice.show(toAppError(err).message);
      }
    }
    if (this.rooms.has(room)) {
      this.closeSettings();
      this.closeAdmin();
      this.closeSearch();
      this.select(room);
    }
  }

  private select(room: RoomId | null): void {
    if (room === this.current) {
      if (room !== null && this.settings.isOpen) this.closeSettings();
      return;
    }
    this.current = room;
    if (room !== null) {
      try {
        window.localStorage.setItem(LAST_ROOM_KEY, String(room));
      } catch {
        // Not remembering the room is fine.
      }
    }
    const state = room === null ? undefined : this.rooms.get(room);
    const title = state === undefined ? '' : roomTitle(state);
    const history = room === null ? null : this.history(room);
    // The "New" line: above the first message not read when the room was opened.
    history?.setDivider(state !== undefined && state.unread > 0 ? state.last_read_id : null, this.account.user.id);
    this.empty.hidden = room !== null;
    this.timeline.show(history, state === undefined ? '' : beginning(state));
    this.composer.setRoom(room, title);
    this.typing.setRoom(room);
    this.settings.setRoom(state ?? null);
    this.renderRooms();
    this.showRoomHead();
    if (history !== null && !history.started) {
      const loading = this.loadFirst(history);
      this.firstPages.set(history.room, loading);
      void loading.finally(() => this.firstPages.delete(history.room));
    }
    this.syncFocus();
  }

  private showRoomHead(): void {
    const state = this.current === null ? undefined : this.rooms.get(this.current);
    if (state === undefined) {
      setText(this.title, this.current === null ? 'Tidings' : 'Loading…');
      setText(this.subtitle, '');
      return;
    }
    const title = roomTitle(state);
    setText(this.title, title);
    this.timeline.setBeginning(beginning(state));
    this.composer.setTitle(title);
    if (state.kind === 'dm') {
      const peer = state.dm_peer?.id;
      const status = peer === undefined ? undefined : this.presence.get(peer);
      setText(this.subtitle, status === 'online' ? 'Online' : status === 'offline' ? 'Offline' : 'Direct message');
    } else {
      setText(this.subtitle, '');
    }
  }

  // ---- history ----

  private history(room: RoomId): RoomHistory {
    let history = this.histories.get(room);
    if (history === undefined) {
      history = new RoomHistory(room);
      this.histories.set(room, history);
    }
    return history;
  }

  private onPage(history: RoomHistory, page: HistoryPage): number {
    if (page.room !== history.room) return 0;
    const added = history.add(page.messages);
    history.hasMore = page.has_more;
    const state = this.rooms.get(history.room);
    const newest = history.newestId();
    if (state !== undefined && newest !== null && newest > state.latest_id) state.latest_id = newest;
    this.timeline.changed(history);
    return added;
  }

  private async loadFirst(history: RoomHistory): Promise<void> {
    history.started = true;
    history.loading = true;
    this.timeline.changed(history);
    try {
      await commands.history(history.room, null, PAGE, (page) => this.onPage(history, page));
    } catch (err) {
      // Let the next scroll to the top try again.
      history.olderPausedUntil = Date.now() + OLDER_PAUSE_MS;
      this.notice.show(toAppError(err).message);
    } finally {
      history.loading = false;
    }
    this.timeline.changed(history);
    this.markRead();
    this.markInteractive();
  }

  private async loadOlder(history: RoomHistory): Promise<void> {
    if (history.loading || !history.hasMore) return;
    const before = history.oldestId();
    if (before === null) {
      if (!history.started) await this.loadFirst(history);
      return;
    }
    history.loading = true;
    this.timeline.changed(history);
    let added = 0;
    try {
      await commands.history(history.room, before, PAGE, (page) => {
        added += this.onPage(history, page);
      });
    } catch (err) {
      this.notice.show(toAppError(err).message);
    } finally {
      history.loading = false;
    }
    if (added === 0) history.olderPausedUntil = Date.now() + OLDER_PAUSE_MS;
    this.timeline.changed(history);
  }

  /** A message as a change left it: the row shows it as it now is. */
  private onChanged(message: Message): void {
    const history = this.histories.get(message.room);
    if (history === undefined) return;
    const changed = history.change(message);
    if (changed && message.deleted_at !== undefined) history.setEditing(message.id, false);
    if (history.requote(message) || changed) this.timeline.changed(history);
  }

  /** Shows message `id` of the open room, loading older pages until it is held (or the room's
   * beginning is reached, or `JUMP_PAGES` pages were loaded). */
  private async jumpTo(id: MessageId): Promise<void> {
    const room = this.current;
    if (room === null) return;
    const history = this.history(room);
    await this.firstPages.get(room);
    for (let pages = 0; history.rowOf(id) === undefined && pages < JUMP_PAGES; pages++) {
      if (!history.hasMore || this.current !== room) break;
      const before = history.oldestId();
      await this.loadOlder(history);
      if (history.oldestId() === before) break;
    }
    if (this.current !== room) return;
    if (this.timeline.reveal(history, id)) return;
    this.notice.show(
      history.rowOf(id) === undefined && history.hasMore
        ? `That message is more than ${JUMP_PAGES * PAGE} messages back: scroll up to load it.`
        : 'That message is no longer in this room’s history.',
    );
  }

  /** Runs a change the user asked for; its answer is shown at once (the event that follows
   * shows the same). False, with a notice, when it was refused. */
  private async changeMessage(change: Promise<Message>): Promise<boolean> {
    try {
      const message = await change;
      const history = this.histories.get(message.room);
      history?.setEditing(message.id, false);
      this.onChanged(message);
      return true;
    } catch (err) {
      this.notice.show(toAppError(err).message);
      return false;
    }
  }

  private onMessage(message: Message): void {
    const me = this.account.user.id;
    const state = this.rooms.get(message.room);
    if (state === undefined) {
      // A room this window has not heard of (a new DM, say): fetch the list again.
      commands
        .rooms()
        .then((rooms) => this.setRooms(rooms))
        .catch(() => undefined);
    } else if (message.id > state.latest_id) {
      state.latest_id = message.id;
      if (message.author.id !== me && message.id > state.last_read_id) {
        state.unread += 1;
        if (message.mentions?.includes(me) === true) state.unread_mentions += 1;
      }
    }
    const history = this.histories.get(message.room);
    // A room never opened loads its history when it is; a message alone would leave a gap.
    if (history !== undefined && (history.started || message.client_id !== undefined)) {
      if (history.add([message]) > 0 || message.client_id !== undefined) this.timeline.changed(history);
    }
    this.typing.stopped(message.room, message.author.id);
    this.renderRooms();
    this.markRead();
  }

  private onRead(room: RoomId, messageId: number): void {
    const state = this.rooms.get(room);
    if (state === undefined || messageId <= state.last_read_id) return;
    state.last_read_id = messageId;
    if (messageId >= state.latest_id) {
      state.unread = 0;
      state.unread_mentions = 0;
    } else {
      const counts = this.histories.get(room)?.unreadAfter(messageId, this.account.user.id);
      if (counts !== null && counts !== undefined) {
        state.unread = counts.unread;
        state.unread_mentions = counts.mentions;
      }
    }
    this.renderRooms();
  }

  // ---- sending ----

  private async send(room: RoomId, body: string, replyTo: MessageId | null, attachments: Attachment[]): Promise<void> {
    let clientId: string;
    try {
      clientId = (await commands.send(room, body, replyTo, attachments)).client_id;
    } catch (err) {
      throw new Error(toAppError(err).message);
    }
    const history = this.history(room);
    history.addPending(
      { client_id: clientId, room, body, created_at: Date.now(), attachments },
      this.account.user,
    );
    if (room === this.current) this.timeline.scrollToBottom();
    this.timeline.changed(history);
  }

  // ---- focus and read markers ----

  /** The room a person is looking at: open, in a focused window, not covered. */
  private visibleRoom(): RoomId | null {
    if (this.current === null || !this.windowFocused || this.lock.isLocked() || this.conversation.hidden) {
      return null;
    }
    return this.current;
  }

  private setWindowFocused(focused: boolean): void {
    if (focused === this.windowFocused) return;
    this.windowFocused = focused;
    this.syncFocus();
  }

  /** Tells the shell which room is looked at (for notifications), and marks it read. */
  private syncFocus(): void {
    const room = this.visibleRoom();
    if (room !== this.reportedFocus) {
      this.reportedFocus = room;
      commands.setFocusedRoom(room).catch(() => undefined);
    }
    this.markRead();
  }

  /** Marks the looked-at room read up to its newest message. */
  private markRead(): void {
    const room = this.visibleRoom();
    if (room === null) return;
    const state = this.rooms.get(room);
    if (state === undefined) return;
    const newest = Math.max(state.latest_id, this.histories.get(room)?.newestId() ?? 0);
    if (newest <= 0) return;
    if (newest <= state.last_read_id && state.unread === 0 && state.unread_mentions === 0) return;
    state.last_read_id = Math.max(newest, state.last_read_id);
    state.unread = 0;
    state.unread_mentions = 0;
    this.renderRooms();
    commands.markRead(room, newest).catch(() => undefined);
  }

  // ---- settings and lock ----

  private openSettings(): void {
    closeDialog();
    this.closeSearch(false);
    this.closeAdmin(false);
    this.composer.flush();
    this.timeline.freeze();
    this.conversation.hidden = true;
    const state = this.current === null ? null : (this.rooms.get(this.current) ?? null);
    this.settings.open(state);
    this.syncFocus();
  }

  /** Shows the search pane in place of the open room. */
  private openSearch(): void {
    closeDialog();
    this.closeSettings(false);
    this.closeAdmin(false);
    if (!this.search.isOpen) {
      this.composer.flush();
      this.timeline.freeze();
      this.conversation.hidden = true;
    }
    this.search.open(this.current === null ? null : (this.rooms.get(this.current) ?? null));
    this.syncFocus();
  }

  /** Back to the open room; `refocus` puts the cursor back in the composer. */
  private closeSearch(refocus = true): void {
    if (!this.search.isOpen) return;
    this.search.close();
    this.conversation.hidden = false;
    this.timeline.thaw();
    this.syncFocus();
    if (refocus) this.composer.focus();
  }

  /** A search hit was picked: its room, scrolled to it. */
  private async openFound(message: Message): Promise<void> {
    if (!this.rooms.has(message.room)) {
      this.notice.show('You are no longer in that room.');
      return;
    }
    this.closeSearch(false);
    this.select(message.room);
    await this.jumpTo(message.id);
  }

  private closeSettings(refocus = true): void {
    if (!this.settings.isOpen) return;
    this.settings.close();
    this.conversation.hidden = false;
    this.timeline.thaw();
    this.syncFocus();
    if (refocus) this.composer.focus();
  }

  /** Shows the admin screen in place of the open room. */
  private openAdmin(): void {
    closeDialog();
    this.closeSettings(false);
    this.closeSearch(false);
    if (!this.admin.isOpen) {
      this.composer.flush();
      this.timeline.freeze();
      this.conversation.hidden = true;
    }
    this.admin.open();
    this.syncFocus();
  }

  private closeAdmin(refocus = true): void {
    if (!this.admin.isOpen) return;
    this.admin.close();
    this.conversation.hidden = false;
    this.timeline.thaw();
    this.syncFocus();
    if (refocus) this.composer.focus();
  }

  private lockNow(): void {
    this.composer.flush();
    commands
      .lockNow()
      // The shell also sends a `locked` event; covering twice is harmless, not covering is not.
      .then(() => this.lock.lock('manual'))
      .catch((err: unknown) => this.notice.show(toAppError(err).message));
  }
}

/** The line above a room's first message. */
function beginning(room: RoomState): string {
  return room.kind === 'dm'
    ? `This is the beginning of your conversation with ${roomTitle(room)}.`
    : `This is the beginning of ${roomTitle(room)}.`;
}
