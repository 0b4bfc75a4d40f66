// A server whose TLS certificate this computer does not trust (self-signed, or changed since it
// was trusted): its fingerprint is shown to compare with the one the host gives, and it is
// trusted only when the person says so — never silently. The desktop app only: a browser checks
// certificates itself.

import { busy, h, setText } from './dom';
import { commands, toAppError, type AppError } from './ipc';

/**
 * When `error` is an untrusted certificate, shows it in `slot` and asks; once the person trusts
 * it (and it is pinned for `url`), empties `slot` and runs `trusted` — the action to try again.
 * Whether `error` was one.
 */
export function offerTrust(slot: HTMLElement, url: string, error: AppError, trusted: () => void): boolean {
  const fingerprint = error.fingerprint;
  const changed = error.code === 'certificate_changed';
  if ((!changed && error.code !== 'untrusted_certificate') || fingerprint === undefined) return false;
  let host = url;
  try {
    host = new URL(url).host;
  } catch {
    // Not a URL the page can read: shown as typed.
  }
  const failed = h('p', { class: 'error', role: 'alert', hidden: true });
  const trust = h(
    'button',
    { type: 'button', class: 'primary', testid: 'trust-certificate' },
    'The fingerprints match: trust it',
  );
  const cancel = h('button', { type: 'button', testid: 'trust-cancel' }, 'Cancel');
  const close = (): void => {
    slot.replaceChildren();
    slot.hidden = true;
  };
  cancel.addEventListener('click', close);
  trust.addEventListener('click', () => {
    void busy(trust, async () => {
      try {
        await commands.trustCertificate(url, fingerprint);
        close();
        trusted();
      } catch (err) {
        setText(failed, toAppError(err).message);
        failed.hidden = false;
      }
    });
  });
  const panel = h(
    'div',
    { class: 'trust stack', role: 'group', 'aria-labelledby': 'trust-title', testid: 'trust-panel' },
    h('strong', { id: 'trust-title' }, changed ? 'This server’s certificate changed' : 'Check this server’s certificate'),
    h(
      'p',
      { class: 'small', testid: 'trust-why' },
      changed
        ? `The certificate of ${host} is not the one you trusted before. That happens when the host ` +
            'renews it — or when someone is in between.'
        : `No authority this computer trusts vouches for the certificate of ${host}: the host may ` +
            'have made it themselves.',
    ),
    h(
      'p',
      { class: 'muted small' },
      'Ask your host for their server’s certificate fingerprint (their server prints it when it ' +
        'starts) and compare it with this one, every pair of characters. Trust it only if they ' +
        'are the same: otherwise someone may be in between.',
    ),
    h('output', { class: 'code', testid: 'certificate-fingerprint' }, fingerprint),
    failed,
    h('div', { class: 'actions' }, cancel, trust),
  );
  slot.replaceChildren(panel);
  slot.hidden = false;
  panel.scrollIntoView({ block: 'nearest' });
  return true;
}
