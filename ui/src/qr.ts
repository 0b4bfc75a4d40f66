// A QR code of an invite link, drawn on a canvas, for a phone or another computer to open it
// without typing. The encoding is qrcode-generator's; only the drawing is here.

import qrcode from 'qrcode-generator';

import { h } from './dom';

/** Pixels per module, and the quiet zone around the code, in modules (the standard's 4). */
const SCALE = 5;
const QUIET = 4;

/** A canvas showing `text` as a QR code, labelled for assistive technology with `label`. */
export function qrCanvas(text: string, label: string): HTMLCanvasElement {
  const qr = qrcode(0, 'M');
  qr.addData(text, 'Byte');
  qr.make();
  const modules = qr.getModuleCount();
  const side = (modules + QUIET * 2) * SCALE;
  const canvas = h('canvas', { class: 'qr', role: 'img', 'aria-label': label, testid: 'invite-qr' });
  canvas.width = side;
  canvas.height = side;
  const context = canvas.getContext('2d');
  if (context === null) return canvas;
  context.fillStyle = '#ffffff';
  context.fillRect(0, 0, side, side);
  context.fillStyle = '#000000';
  for (let row = 0; row < modules; row += 1) {
    for (let col = 0; col < modules; col += 1) {
      if (qr.isDark(row, col)) context.fillRect((col + QUIET) * SCALE, (row + QUIET) * SCALE, SCALE, SCALE);
    }
  }
  return canvas;
}
