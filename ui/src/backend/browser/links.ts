// The chat channel's transports in the browser: the WebSocket, and the HTTP ones of the same
// channel (`/api/stream` as Server-Sent Events or as JSON lines read with streaming `fetch`, the
// hidden iframe's `<script>` chunks, long and short polling), their sends going up as
// `POST /api/frames`. A link only carries frames; what they mean is the session's business.
//
// Every HTTP link resumes from a cursor: it opens at the cursor it is given, takes each batch's
// cursor as its own, and reopens from there when a stream ends or a poll is answered, so a cut
// anywhere loses nothing and repeats nothing.

import type { Batch, ClientFrame, LockCause, ServerFrame, TransportKind, Transports } from '../../ipc';
import { ApiFailure, call } from './http';
import {
  CLOSE_SESSION_EXPIRED,
  CLOSE_SESSION_REVOKED,
  EVENT_BATCH,
  FRAMES_PATH,
  IFRAME_CALLBACK,
  IFRAME_PATH,
  POLL_PATH,
  STREAM_PATH,
  SUBPROTOCOL,
  WS_PATH,
} from './wire';

/** How a link ended: the network broke it, or the server ended the session. */
export type Ended = { how: 'broken' } | { how: 'locked'; cause: LockCause };

export interface LinkHandlers {
  /** Frames in order; `cursor` when the transport says where to resume (HTTP batches). */
  frames(frames: ServerFrame[], cursor: number | null): void;
  /** Called at most once, never after `close()`. */
  ended(ended: Ended): void;
}

export interface Link {
  readonly kind: TransportKind;
  send(frame: ClientFrame): void;
  close(): void;
}

/** Whether `fetch` can hand out a response body as it arrives (else the iframe streams). */
export function fetchStreams(): boolean {
  return typeof ReadableStream === 'function' && 'body' in Response.prototype;
}

/** Opens `kind` at `cursor` (the newest message id the client has; 0 for none). */
export function open(kind: TransportKind, cursor: number, offer: Transports, handlers: LinkHandlers): Link {
  switch (kind) {
    case 'web_socket':
      return new SocketLink(handlers);
    case 'sse':
      return new HttpLink(kind, cursor, handlers, (link) => link.eventSource());
    case 'streaming':
      return new HttpLink(kind, cursor, handlers, (link) => link.fetchStream());
    case 'iframe':
      return new HttpLink(kind, cursor, handlers, (link) => link.iframe());
    case 'long_polling':
      return new HttpLink(kind, cursor, handlers, (link) => link.poll(offer.poll_timeout_ms, 0));
    case 'short_polling':
      return new HttpLink(kind, cursor, handlers, (link) => link.poll(0, offer.short_poll_interval_ms));
  }
}

function decode(text: string): ServerFrame | null {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string') {
      return value as ServerFrame;
    }
  } catch {
    // Not JSON: dropped below.
  }
  console.warn('ignoring a frame that is not one', text.slice(0, 80));
  return null;
}

class SocketLink implements Link {
  readonly kind: TransportKind = 'web_socket';
  private readonly ws: WebSocket;
  private closed = false;

  constructor(private readonly handlers: LinkHandlers) {
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    this.ws = new WebSocket(`${scheme}://${window.location.host}${WS_PATH}`, SUBPROTOCOL);
    this.ws.onmessage = (event: MessageEvent) => {
      if (typeof event.data !== 'string') return;
      const frame = decode(event.data);
      if (frame !== null && !this.closed) this.handlers.frames([frame], null);
    };
    this.ws.onclose = (event: CloseEvent) => this.end(closeMeaning(event.code));
  }

  send(frame: ClientFrame): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  close(): void {
    this.closed = true;
    this.ws.onmessage = null;
    this.ws.onclose = null;
    this.ws.close(1000);
  }

  private end(ended: Ended): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.ended(ended);
  }
}

function closeMeaning(code: number): Ended {
  if (code === CLOSE_SESSION_EXPIRED) return { how: 'locked', cause: 'expired' };
  if (code === CLOSE_SESSION_REVOKED) return { how: 'locked', cause: 'revoked' };
  return { how: 'broken' };
}

/** Iframe streams by the frame element's name, for the one global callback. */
const iframeLinks = new Map<string, HttpLink>();
let iframeSerial = 0;

function installIframeCallback(): void {
  const w = window as unknown as Record<string, unknown>;
  if (typeof w[IFRAME_CALLBACK] === 'function') return;
  // The server's `<script>parent.tidings(batch)</script>` chunks land here; `this` is not
  // trusted to say which frame called, so every open iframe link is asked (there is one).
  w[IFRAME_CALLBACK] = (batch: unknown) => {
    for (const link of iframeLinks.values()) link.deliver(batch as Batch);
  };
}

class HttpLink implements Link {
  private closed = false;
  private readonly abort = new AbortController();
  private hello = true;
  private cleanup: (() => void) | null = null;

  constructor(
    readonly kind: TransportKind,
    private cursor: number,
    private readonly handlers: LinkHandlers,
    start: (link: HttpLink) => void | Promise<void>,
  ) {
    void Promise.resolve()
      .then(() => start(this))
      .catch((err: unknown) => this.fail(err));
  }

  send(frame: ClientFrame): void {
    if (this.closed) return;
    call<ServerFrame[]>('POST', FRAMES_PATH, { body: frame, noLockOn401: true })
      .then((frames) => {
        if (!this.closed && Array.isArray(frames) && frames.length > 0) this.handlers.frames(frames, null);
      })
      .catch((err: unknown) => this.fail(err));
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
    this.cleanup?.();
    this.cleanup = null;
  }

  /** The query of the next request: from the cursor, the hello only on the first. */
  private query(extra = ''): string {
    const q = `?cursor=${this.cursor}${this.hello ? '&hello=1' : ''}${extra}`;
    this.hello = false;
    return q;
  }

  deliver(batch: Batch): void {
    if (this.closed || typeof batch !== 'object' || batch === null || !Array.isArray(batch.frames)) return;
    if (typeof batch.cursor === 'number' && batch.cursor > this.cursor) this.cursor = batch.cursor;
    this.handlers.frames(batch.frames, batch.cursor);
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    this.close();
    if (err instanceof ApiFailure && err.status === 401) {
      this.handlers.ended({ how: 'locked', cause: 'rejected' });
    } else {
      this.handlers.ended({ how: 'broken' });
    }
  }

  // ---- long and short polling ----

  async poll(timeoutMs: number, intervalMs: number): Promise<void> {
    const extra = timeoutMs === 0 ? '&timeout=0' : '';
    while (!this.closed) {
      const batch = await call<Batch>('GET', POLL_PATH + this.query(extra), {
        timeoutMs: timeoutMs + 15_000,
        signal: this.abort.signal,
        noLockOn401: true,
      });
      this.deliver(batch);
      if (intervalMs > 0 && !this.closed) await this.pause(intervalMs);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = window.setTimeout(resolve, ms);
      this.abort.signal.addEventListener('abort', () => {
        window.clearTimeout(timer);
        resolve();
      });
    });
  }

  // ---- streaming fetch (JSON lines) ----

  async fetchStream(): Promise<void> {
    while (!this.closed) {
      const response = await fetch(STREAM_PATH + this.query(), {
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { accept: 'application/x-ndjson' },
        signal: this.abort.signal,
      });
      if (!response.ok || response.body === null) {
        throw new ApiFailure('stream', `The stream was answered ${response.status}.`, response.status);
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line === '') continue;
          this.deliver(JSON.parse(line) as Batch);
        }
      }
      // The server ended the stream (a restart, a bound): reopen from the cursor.
    }
  }

  // ---- Server-Sent Events ----

  eventSource(): void {
    // The browser resumes a cut stream by itself with `Last-Event-ID` (each batch's id is its
    // cursor); the session is told only when the stream fails for good.
    const source = new EventSource(STREAM_PATH + this.query());
    source.addEventListener(EVENT_BATCH, (event: MessageEvent<string>) => {
      try {
        this.deliver(JSON.parse(event.data) as Batch);
      } catch {
        console.warn('ignoring a batch that is not JSON');
      }
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) this.fail(new Error('the stream failed'));
    };
    this.cleanup = () => source.close();
  }

  // ---- iframe streaming ----

  iframe(): void {
    installIframeCallback();
    const name = `tidings-stream-${++iframeSerial}`;
    iframeLinks.set(name, this);
    let frame: HTMLIFrameElement | null = null;
    let delivered = false;
    const openFrame = (): void => {
      frame?.remove();
      delivered = false;
      frame = document.createElement('iframe');
      frame.name = name;
      frame.hidden = true;
      frame.title = 'Tidings stream';
      frame.setAttribute('aria-hidden', 'true');
      frame.tabIndex = -1;
      frame.addEventListener('load', () => {
        // The document ended: the server closed the stream (its byte bound, a restart) or it
        // never started (an error page). Reopen from the cursor, unless nothing ever came.
        if (this.closed) return;
        if (!delivered) this.fail(new Error('the iframe stream delivered nothing'));
        else openFrame();
      });
      frame.src = IFRAME_PATH + this.query();
      document.body.appendChild(frame);
    };
    const deliver = this.deliver.bind(this);
    this.deliver = (batch: Batch) => {
      delivered = true;
      deliver(batch);
    };
    openFrame();
    this.cleanup = () => {
      iframeLinks.delete(name);
      frame?.remove();
      frame = null;
    };
  }
}
