// Showing times to people: clock times on messages, relative times in the session list.

const clock = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayAndClock = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: 'numeric',
  minute: '2-digit',
});
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

function sameDay(a: Date, b: Date): boolean {
  return (
    a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate()
  );
}

/** "14:02" today, "Mar 3, 14:02" on another day. */
export function messageTime(ms: number, now: number = Date.now()): string {
  const at = new Date(ms);
  return sameDay(at, new Date(now)) ? clock.format(at) : dayAndClock.format(at);
}

/** The full date and time, for a tooltip. */
export function fullTime(ms: number): string {
  return full.format(new Date(ms));
}

/** "just now", "5 min ago", "3 h ago", "2 days ago", or a date for anything older. */
export function relativeTime(ms: number, now: number = Date.now()): string {
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days === 1) return 'yesterday';
  if (days < 30) return `${days} days ago`;
  return dayAndClock.format(new Date(ms));
}
