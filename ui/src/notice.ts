// A short message at the bottom of the window about something that went wrong in the background
// (a send refused, a command that failed). It goes away by itself.

import { h, setText } from './dom';

const SHOW_MS = 6000;

export class Notice {
  readonly element: HTMLElement;
  private timer: number | null = null;

  constructor() {
    this.element = h('div', { class: 'notice', role: 'status', testid: 'notice', hidden: true });
  }

  show(text: string): void {
    setText(this.element, text);
    this.element.hidden = false;
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => {
      this.element.hidden = true;
      this.timer = null;
    }, SHOW_MS);
  }
}
