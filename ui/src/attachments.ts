// The files a message carries: an image as its thumbnail (made by the server, drawn at its own
// size so the row does not jump when it loads), which opens full size in a viewer (Escape or a
// click closes it); any other file as its name and size, saved when clicked. Names are text
// nodes, never markup, and every URL comes from the backend.

import { h } from './dom';
import { commands, type Attachment } from './ipc';
import { fileSize } from './composer';

/** The thumbnails' bounding square, as the server makes them. */
export const THUMBNAIL_SIDE = 320;

/** How big an image's thumbnail is drawn. */
export function thumbnailSize(attachment: Attachment): { width: number; height: number } | null {
  const image = attachment.image;
  if (image === undefined || image === null) return null;
  const scale = Math.min(1, THUMBNAIL_SIDE / Math.max(image.width, image.height, 1));
  return {
    width: Math.max(1, Math.round(image.width * scale)),
    height: Math.max(1, Math.round(image.height * scale)),
  };
}

/** The height `attachments` add to a row, for the timeline's estimate before it is drawn. */
export function attachmentsHeight(attachments: readonly Attachment[]): number {
  let height = 0;
  for (const a of attachments) height += (thumbnailSize(a)?.height ?? 28) + 8;
  return height;
}

export function renderAttachments(attachments: readonly Attachment[]): HTMLElement {
  const list = h('div', { class: 'attachments', testid: 'attachments' });
  for (const attachment of attachments) {
    list.appendChild(thumbnailSize(attachment) === null ? renderFile(attachment) : renderImage(attachment));
  }
  return list;
}

function renderImage(attachment: Attachment): HTMLElement {
  const size = thumbnailSize(attachment);
  const img = h('img', {
    class: 'attachment-thumbnail',
    testid: 'attachment-thumbnail',
    alt: attachment.name,
    width: size?.width,
    height: size?.height,
  });
  commands
    .attachmentUrl(attachment, true)
    .then((url) => {
      img.src = url;
    })
    .catch(() => img.classList.add('broken'));
  const button = h(
    'button',
    { type: 'button', class: 'attachment-image', testid: 'attachment-image', title: `Open ${attachment.name}` },
    img,
  );
  button.addEventListener('click', () => openViewer(attachment));
  return button;
}

function renderFile(attachment: Attachment): HTMLElement {
  const link = h(
    'a',
    { class: 'attachment-file', testid: 'attachment-file', download: attachment.name, rel: 'noopener' },
    h('span', { class: 'attachment-icon', 'aria-hidden': 'true' }, '📄'),
    h('span', { class: 'attachment-name' }, attachment.name),
    h('span', { class: 'attachment-size' }, fileSize(attachment.size)),
  );
  commands
    .attachmentUrl(attachment, false)
    .then((url) => {
      link.href = url;
    })
    .catch(() => link.classList.add('broken'));
  return link;
}

/** Shows an image full size over the app until Escape or a click. */
function openViewer(attachment: Attachment): void {
  const img = h('img', { class: 'viewer-image', testid: 'image-full', alt: attachment.name });
  const viewer = h(
    'div',
    { class: 'image-viewer', testid: 'image-viewer', role: 'dialog', 'aria-label': attachment.name, tabindex: -1 },
    img,
    h('div', { class: 'viewer-caption' }, `${attachment.name} · ${fileSize(attachment.size)}`),
  );
  const close = (): void => {
    viewer.remove();
    document.removeEventListener('keydown', onKey, true);
  };
  const onKey = (event: KeyboardEvent): void => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  };
  viewer.addEventListener('click', close);
  document.addEventListener('keydown', onKey, true);
  document.body.appendChild(viewer);
  viewer.focus();
  commands
    .attachmentUrl(attachment, false)
    .then((url) => {
      img.src = url;
    })
    .catch(() => img.classList.add('broken'));
}
