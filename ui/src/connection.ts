// The connection bar: "Online" (with the transport when it is not the WebSocket: "Online ·
// long-polling"), "Connecting…", "Reconnecting in N s" (counting down to the
// shell's next attempt), "Offline", or "Locked".

import { h, setText } from './dom';
import type { ConnState, TransportKind } from './ipc';

/** How a transport below the WebSocket is named; the WebSocket itself goes unsaid. */
const TRANSPORT_LABELS: Record<TransportKind, string> = {
  web_socket: '',
  sse: 'SSE',
  streaming: 'streaming',
  iframe: 'iframe streaming',
  long_polling: 'long-polling',
  short_polling: 'short polling',
};

export class ConnectionBar {
  readonly element: HTMLElement;
  private readonly label: HTMLElement;
  private state: ConnState = { state: 'connecting' };
  private timer: number | null = null;

  constructor() {
    this.label = h('span', { class: 'connection-label' });
    this.element = h(
      'div',
      { class: 'connection', testid: 'connection', role: 'status', 'data-state': 'connecting' },
      h('span', { class: 'connection-dot', 'aria-hidden': 'true' }),
      this.label,
    );
    this.render();
  }

  set(state: ConnState): void {
    this.state = state;
    this.render();
  }

  private render(): void {
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    const s = this.state;
    this.element.setAttribute('data-state', s.state);
    switch (s.state) {
      case 'online': {
        const over = s.transport ? TRANSPORT_LABELS[s.transport] : '';
        setText(this.label, over ? `Online · ${over}` : 'Online');
        break;
      }
      case 'connecting':
        setText(this.label, 'Connecting…');
        break;
      case 'locked':
        setText(this.label, 'Locked');
        break;
      case 'offline': {
        if (typeof s.retry_at !== 'number') {
          setText(this.label, 'Offline');
          break;
        }
        const left = Math.ceil((s.retry_at - Date.now()) / 1000);
        if (left <= 0) {
          setText(this.label, 'Reconnecting…');
          break;
        }
        setText(this.label, `Reconnecting in ${left} s…`);
        // Tick on the next whole second before retry_at.
        const wait = (s.retry_at - Date.now()) % 1000 || 1000;
        this.timer = window.setTimeout(() => this.render(), wait + 5);
        break;
      }
    }
  }
}
