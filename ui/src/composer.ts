// Writing a message: Enter sends, Shift+Enter starts a new line. A reply shows what it answers
// above the text ("Replying to ana: …", × or Escape to cancel). Files (the 📎 button, or pasted
// or dropped) upload at once, each with its progress and a × that cancels it; the message carries
// those done, and waits for the rest. Each room keeps its draft (saved through the shell,
// debounced) and its uploads, and typing is announced at most once every few seconds.

import { h } from './dom';
import { commands, toAppError, type Attachment, type MessageId, type RoomId, type UserRef } from './ipc';
import { MentionList } from './mentions';

const DRAFT_SAVE_MS = 500;
const TYPING_EVERY_MS = 3000;
const MAX_HEIGHT_PX = 200;

export interface ComposerHooks {
  /** Sends `body` to `room` (a reply to `replyTo`); rejects with a message for the person if
   * it could not. */
  send(room: RoomId, body: string, replyTo: MessageId | null, attachments: Attachment[]): Promise<void>;
  /** Something went wrong that the person should hear about. */
  notice(text: string): void;
}

/** A file being uploaded for the next message, or uploaded. */
interface Upload {
  id: string;
  file: File;
  attachment: Attachment | null;
  chip: HTMLElement;
  bar: HTMLProgressElement;
}

let uploadCount = 0;

/** "1.2 MB", for people. */
export function fileSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(bytes < 10_000 ? 1 : 0)} kB`;
  return `${(bytes / 1_000_000).toFixed(bytes < 10_000_000 ? 1 : 0)} MB`;
}

export class Composer {
  readonly element: HTMLFormElement;
  private readonly textarea: HTMLTextAreaElement;
  private readonly label: HTMLLabelElement;
  private readonly button: HTMLButtonElement;
  private room: RoomId | null = null;
  /** The drafts known here, so switching rooms shows a draft at once. */
  private drafts = new Map<RoomId, string>();
  private saveTimer: number | null = null;
  private lastTyping = new Map<RoomId, number>();
  /** The message the next send answers, in the open room. */
  private replyTo: MessageId | null = null;
  private readonly replyBanner: HTMLElement;
  private readonly replyText: HTMLElement;
  private readonly mentions: MentionList;
  /** Each room's uploads for its next message. */
  private uploads = new Map<RoomId, Upload[]>();
  private readonly uploadList: HTMLElement;
  private readonly attach: HTMLButtonElement;
  private readonly picker: HTMLInputElement;

  constructor(private readonly hooks: ComposerHooks) {
    this.textarea = h('textarea', {
      id: 'composer-input',
      class: 'composer-input',
      testid: 'composer',
      rows: 1,
      autocomplete: 'off',
      spellcheck: 'true',
    });
    this.label = h('label', { for: 'composer-input', class: 'visually-hidden' }, 'Message');
    this.button = h('button', { type: 'submit', class: 'primary', testid: 'composer-send' }, 'Send');
    this.replyText = h('span', { class: 'reply-text' });
    const cancelReply = h(
      'button',
      { type: 'button', class: 'link-button', testid: 'reply-cancel', 'aria-label': 'Cancel the reply' },
      '×',
    );
    cancelReply.addEventListener('click', () => this.cancelReply());
    this.replyBanner = h('div', { class: 'reply-banner', testid: 'reply-banner', hidden: true }, this.replyText, cancelReply);
    this.picker = h('input', { type: 'file', multiple: true, class: 'visually-hidden', testid: 'attach-input', tabindex: -1 });
    this.picker.addEventListener('change', () => {
      for (const file of Array.from(this.picker.files ?? [])) this.startUpload(file);
      this.picker.value = '';
    });
    this.attach = h(
      'button',
      { type: 'button', class: 'attach', testid: 'attach-button', title: 'Attach files', 'aria-label': 'Attach files' },
      '📎',
    );
    this.attach.addEventListener('click', () => this.picker.click());
    this.uploadList = h('div', { class: 'uploads', testid: 'uploads', hidden: true });
    const row = h('div', { class: 'composer-row' }, this.label, this.attach, this.picker, this.textarea, this.button);
    this.mentions = new MentionList(this.textarea, () => this.room, () => this.onInput());
    this.element = h('form', { class: 'composer' }, this.mentions.element, this.replyBanner, this.uploadList, row);
    this.textarea.addEventListener('paste', (event) => {
      const files = Array.from(event.clipboardData?.files ?? []);
      if (files.length === 0) return;
      event.preventDefault();
      for (const file of files) this.startUpload(file);
    });
    this.element.addEventListener('dragover', (event) => {
      if (this.room !== null && event.dataTransfer?.types.includes('Files') === true) event.preventDefault();
    });
    this.element.addEventListener('drop', (event) => {
      const files = Array.from(event.dataTransfer?.files ?? []);
      if (files.length === 0 || this.room === null) return;
      event.preventDefault();
      for (const file of files) this.startUpload(file);
    });

    this.element.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.submit();
    });
    this.textarea.addEventListener('keydown', (event) => {
      if (this.mentions.key(event)) return;
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && !event.altKey) {
        event.preventDefault();
        void this.submit();
      } else if (event.key === 'Escape' && this.replyTo !== null) {
        event.preventDefault();
        this.cancelReply();
      }
    });
    this.textarea.addEventListener('input', () => {
      this.onInput();
      this.mentions.update();
    });
    this.textarea.addEventListener('click', () => this.mentions.update());
    this.textarea.addEventListener('blur', () => this.mentions.close());
    // No room is open yet: nothing can be written or sent until one is.
    this.show('');
  }

  /** The next message answers message `id` by `author` (shown as `preview`). */
  replyingTo(id: MessageId, author: UserRef, preview: string): void {
    if (this.room === null) return;
    this.replyTo = id;
    this.replyText.textContent = `Replying to ${author.name}: ${preview}`;
    this.replyBanner.hidden = false;
    this.focus();
  }

  private cancelReply(): void {
    this.replyTo = null;
    this.replyBanner.hidden = true;
    this.replyText.textContent = '';
  }

  /** Switches to another room's draft, saving the current one first. */
  setRoom(room: RoomId | null, title: string): void {
    if (room === this.room) return;
    this.cancelReply();
    this.mentions.close();
    this.flush();
    this.room = room;
    this.show(title);
    this.showUploads();
    if (room === null) {
      this.setValue('');
      return;
    }
    const known = this.drafts.get(room);
    this.setValue(known ?? '');
    if (known === undefined) {
      commands
        .draft(room)
        .then((text) => {
          // Only if the person has not started typing in the meantime.
          if (this.room === room && this.textarea.value === '' && text !== null) {
            this.drafts.set(room, text);
            this.setValue(text);
          }
        })
        .catch(() => undefined);
    }
  }

  /** Enables the composer for the open room (titled `title`), or disables it when none is. */
  private show(title: string): void {
    const disabled = this.room === null;
    this.textarea.disabled = disabled;
    this.button.disabled = disabled;
    this.attach.disabled = disabled;
    const placeholder = disabled ? 'Pick a room to start talking' : `Message ${title}`;
    this.textarea.placeholder = placeholder;
    this.label.textContent = placeholder;
  }

  setTitle(title: string): void {
    if (this.room === null) return;
    this.textarea.placeholder = `Message ${title}`;
    this.label.textContent = `Message ${title}`;
  }

  focus(): void {
    if (!this.textarea.disabled) this.textarea.focus();
  }

  /** Saves the open room's draft now (before a room switch, a lock, or closing). */
  flush(): void {
    if (this.saveTimer === null) return;
    window.clearTimeout(this.saveTimer);
    this.saveTimer = null;
    if (this.room !== null) this.saveDraft(this.room, this.textarea.value);
  }

  private saveDraft(room: RoomId, text: string): void {
    commands.setDraft(room, text).catch(() => undefined);
  }

  private setValue(text: string): void {
    this.textarea.value = text;
    this.autosize();
  }

  private onInput(): void {
    this.autosize();
    const room = this.room;
    if (room === null) return;
    const text = this.textarea.value;
    this.drafts.set(room, text);
    if (this.saveTimer !== null) window.clearTimeout(this.saveTimer);
    this.saveTimer = window.setTimeout(() => {
      this.saveTimer = null;
      this.saveDraft(room, text);
    }, DRAFT_SAVE_MS);

    if (text.trim() !== '') {
      const now = Date.now();
      if (now - (this.lastTyping.get(room) ?? 0) >= TYPING_EVERY_MS) {
        this.lastTyping.set(room, now);
        commands.typing(room).catch(() => undefined);
      }
    }
  }

  private autosize(): void {
    const ta = this.textarea;
    ta.style.height = 'auto';
    // Not laid out (hidden, or not in the document yet): leave it to the stylesheet.
    if (ta.scrollHeight === 0) {
      ta.style.height = '';
      return;
    }
    ta.style.height = `${Math.min(ta.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  private async submit(): Promise<void> {
    const room = this.room;
    if (room === null) return;
    const text = this.textarea.value;
    const body = text.trim();
    const uploads = this.uploads.get(room) ?? [];
    if (uploads.some((u) => u.attachment === null)) {
      this.hooks.notice('Wait for the files to finish uploading, or cancel them.');
      return;
    }
    const attachments = uploads.map((u) => u.attachment).filter((a): a is Attachment => a !== null);
    if (body === '' && attachments.length === 0) return;
    this.uploads.delete(room);
    this.showUploads();
    if (this.saveTimer !== null) window.clearTimeout(this.saveTimer);
    this.saveTimer = null;
    this.drafts.set(room, '');
    this.setValue('');
    this.saveDraft(room, '');
    // A new message ends "typing": the next keystroke may announce again.
    this.lastTyping.delete(room);
    const replyTo = this.replyTo;
    this.cancelReply();
    try {
      await this.hooks.send(room, body, replyTo, attachments);
    } catch (err) {
      // Give the text and the files back rather than lose them.
      if (this.room === room && this.textarea.value === '') {
        this.drafts.set(room, text);
        this.setValue(text);
        this.saveDraft(room, text);
      }
      if (uploads.length > 0 && !this.uploads.has(room)) {
        this.uploads.set(room, uploads);
        this.showUploads();
      }
      this.hooks.notice(err instanceof Error ? err.message : String(err));
    }
  }

  /** Uploads `file` to the open room at once, shown as a chip with its progress. */
  private startUpload(file: File): void {
    const room = this.room;
    if (room === null) return;
    const id = `u${Date.now()}-${++uploadCount}`;
    const bar = h('progress', { class: 'upload-progress', testid: 'upload-progress', max: 1, value: 0 });
    const cancel = h(
      'button',
      { type: 'button', class: 'link-button', testid: 'upload-cancel', 'aria-label': `Remove ${file.name}` },
      '×',
    );
    const chip = h(
      'div',
      { class: 'upload', testid: 'upload', 'data-state': 'uploading' },
      h('span', { class: 'upload-name' }, file.name),
      h('span', { class: 'upload-size' }, fileSize(file.size)),
      bar,
      cancel,
    );
    const upload: Upload = { id, file, attachment: null, chip, bar };
    const list = this.uploads.get(room) ?? [];
    list.push(upload);
    this.uploads.set(room, list);
    this.showUploads();
    const drop = (): void => {
      const left = (this.uploads.get(room) ?? []).filter((u) => u !== upload);
      if (left.length === 0) this.uploads.delete(room);
      else this.uploads.set(room, left);
      this.showUploads();
    };
    cancel.addEventListener('click', () => {
      if (upload.attachment === null) commands.cancelUpload(id).catch(() => undefined);
      drop();
    });
    commands
      .upload(room, file, id, (sent, total) => {
        bar.max = total > 0 ? total : 1;
        bar.value = sent;
      })
      .then((attachment) => {
        upload.attachment = attachment;
        bar.value = bar.max;
        chip.dataset['state'] = 'done';
      })
      .catch((err: unknown) => {
        const error = toAppError(err);
        drop();
        if (error.code !== 'cancelled') this.hooks.notice(`${file.name} was not uploaded: ${error.message}`);
      });
  }

  /** The open room's uploads. */
  private showUploads(): void {
    const list = this.room === null ? [] : (this.uploads.get(this.room) ?? []);
    this.uploadList.replaceChildren(...list.map((u) => u.chip));
    this.uploadList.hidden = list.length === 0;
  }
}
