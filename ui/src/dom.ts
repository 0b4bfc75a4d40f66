// Building DOM nodes. Text always goes in as text nodes: nothing in the app parses HTML, so a
// message or a name can never become markup.

type AttrValue = string | number | boolean | null | undefined;

/** Attributes by name; `testid` becomes `data-testid`. `true` sets an empty attribute, `false`,
 * `null` and `undefined` leave it out. There is deliberately no way to set `style` or `on*`. */
export type Attrs = { testid?: string; class?: string } & Record<string, AttrValue>;

export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    const attr = name === 'testid' ? 'data-testid' : name;
    if (attr === 'style' || attr.toLowerCase().startsWith('on')) {
      throw new Error(`refusing to set attribute ${attr}`);
    }
    el.setAttribute(attr, value === true ? '' : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

/** Replaces an element's contents with text (never markup). */
export function setText(el: Element, text: string): void {
  el.textContent = text;
}

/** Shows or hides an element, keeping it out of the accessibility tree and the tab order. */
export function show(el: HTMLElement, visible: boolean): void {
  el.hidden = !visible;
}

/** Runs `fn` with a button disabled, so a slow command cannot be sent twice. */
export async function busy<T>(button: HTMLButtonElement, fn: () => Promise<T>): Promise<T> {
  button.disabled = true;
  try {
    return await fn();
  } finally {
    button.disabled = false;
  }
}
