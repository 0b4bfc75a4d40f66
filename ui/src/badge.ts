// The unread count where a browser shows it: in the tab's title ("(3) Tidings") and drawn on
// the favicon. (The desktop app's tray shows it there; its window title follows too.)

const TITLE = 'Tidings';
const SIZE = 32;

let shown = -1;

/** Shows `unread` (0 for none); `mention` colours the badge for a waiting mention. */
export function showUnread(unread: number, mention: boolean): void {
  const key = unread * 2 + Number(mention);
  if (key === shown) return;
  shown = key;
  document.title = unread > 0 ? `(${unread > 99 ? '99+' : unread}) ${TITLE}` : TITLE;
  const href = favicon(unread, mention);
  if (href === null) return;
  let link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
  if (link === null) {
    link = document.createElement('link');
    link.rel = 'icon';
    document.head.appendChild(link);
  }
  link.href = href;
}

/** A round "T" mark with the count in a corner, as a PNG data URL. */
function favicon(unread: number, mention: boolean): string | null {
  const canvas = document.createElement('canvas');
  canvas.width = SIZE;
  canvas.height = SIZE;
  const ctx = canvas.getContext('2d');
  if (ctx === null) return null;
  ctx.fillStyle = '#2f6feb';
  ctx.beginPath();
  ctx.arc(SIZE / 2, SIZE / 2, SIZE / 2, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = '#ffffff';
  ctx.font = `bold ${SIZE * 0.6}px sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText('T', SIZE / 2, SIZE / 2 + 1);
  if (unread > 0) {
    const label = unread > 9 ? '9+' : String(unread);
    ctx.fillStyle = mention ? '#d1242f' : '#e36209';
    ctx.beginPath();
    ctx.arc(SIZE - 10, 10, 10, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = '#ffffff';
    ctx.font = `bold ${label.length > 1 ? 11 : 14}px sans-serif`;
    ctx.fillText(label, SIZE - 10, 11);
  }
  return canvas.toDataURL('image/png');
}
