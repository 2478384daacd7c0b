// The console's "Today" panel: the signed-in specialist's appointments of the
// day (theirs and the unassigned ones) with the time window, the customer, the
// state, how the notifications to the customer went and a Join/Open action;
// and the organisation's seats (used / licensed, and for supervisors and
// admins the month's overage report).

import { $, el } from './ui.js';

const NOTIFICATION_STATES = {
  queued: 'queued', sending: 'sending', sent: 'delivered', failed: 'failed',
};
const JOIN_EARLY_MS = 10 * 60 * 1000; // the Join label from ten minutes before the start

/** The specialist ID in a console token (its subject), or '' if unreadable. */
export function tokenSubject(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
    return typeof claims.sub === 'string' ? claims.sub : '';
  } catch {
    return '';
  }
}

function hhmm(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function notificationsLine(list) {
  if (!Array.isArray(list) || list.length === 0) return 'No notifications sent';
  return list.map((n) => {
    const state = NOTIFICATION_STATES[n.state] ?? n.state;
    return `${n.channel} ${n.kind}: ${state}${n.state === 'failed' && n.last_error ? ` (${n.last_error})` : ''}`;
  }).join(' · ');
}

function appointmentItem(a, me, open, now) {
  const start = Date.parse(a.start);
  const end = Date.parse(a.end);
  const live = now >= start - JOIN_EARLY_MS && now <= end;
  const mine = a.specialist_id && a.specialist_id === me;
  const button = el('button', {
    type: 'button',
    class: `button ${live ? 'primary' : ''}`,
    text: live ? 'Join' : 'Open',
    disabled: !a.session_id || a.state !== 'booked',
    'aria-label': `${live ? 'Join' : 'Open'} the appointment with ${a.customer?.name || 'the customer'}`,
    dataset: { testid: 'appointment-open', sessionId: a.session_id ?? '' },
    on: { click: () => open(a.session_id) },
  });
  return el('li', { class: 'today-item', dataset: { appointmentId: a.id, testid: 'today-appointment', state: a.state } },
    el('span', { class: 'today-time', text: `${hhmm(a.start)}–${hhmm(a.end)}` }),
    el('span', { class: 'today-customer', text: a.customer?.name || 'Customer', dataset: { testid: 'appointment-customer' } }),
    el('span', { class: `badge state-${a.state}`, text: a.state === 'booked' ? 'Booked' : 'Cancelled' }),
    el('span', { class: 'today-owner', text: mine ? 'Yours' : 'Unassigned' }),
    el('span', { class: 'today-notifications fineprint', text: notificationsLine(a.notifications), dataset: { testid: 'appointment-notifications' } }),
    button);
}

/** Fills the Today panel. `api(method, path)` is the console's API call. */
export async function loadToday({ api, token, open }) {
  const list = $('today-list');
  if (!list) return;
  const me = tokenSubject(token);
  const day = new Date();
  day.setHours(0, 0, 0, 0);
  const next = new Date(day);
  next.setDate(day.getDate() + 1);
  const query = `from=${encodeURIComponent(day.toISOString())}&to=${encodeURIComponent(next.toISOString())}&limit=100`;
  $('today-status').textContent = 'Loading…';
  try {
    const res = await api('GET', `/v1/appointments?${query}`);
    const all = Array.isArray(res?.data) ? res.data : [];
    const wanted = all.filter((a) => !a.specialist_id || a.specialist_id === me);
    // The list leaves out the notifications; each appointment has them.
    const full = await Promise.all(wanted.map((a) => api('GET', `/v1/appointments/${encodeURIComponent(a.id)}`).catch(() => a)));
    const now = Date.now();
    list.replaceChildren(...full.map((a) => appointmentItem(a, me, open, now)));
    list.dataset.loads = String(Number(list.dataset.loads || 0) + 1); // each fresh list, for tests
    $('today-status').textContent = full.length === 0 ? 'No appointments today.'
      : full.length === 1 ? '1 appointment today' : `${full.length} appointments today`;
  } catch (err) {
    list.replaceChildren();
    $('today-status').textContent = err.status === 403 ? '' : `The appointments could not be loaded: ${err.message}`;
  }
}

/** Shows the seats line, and the month's seat report to those who may read it. */
export async function loadSeats({ api }) {
  const line = $('seats-line');
  if (!line) return { auditor: false };
  try {
    const org = await api('GET', '/v1/organization');
    const seats = org?.seats;
    if (seats) {
      line.textContent = seats.licensed > 0
        ? `Seats: ${seats.used} used of ${seats.licensed} licensed${seats.over ? ' — over the licence' : ''}`
        : `Seats: ${seats.used} used (unlimited licence)`;
      line.classList.toggle('over', !!seats.over);
      line.hidden = false;
    }
  } catch {
    line.hidden = true;
  }
  const report = $('seat-report');
  try {
    const r = await api('GET', '/v1/organization/seat-report');
    report.textContent = `${r.month}: peak ${r.peak_used} of ${r.licensed > 0 ? r.licensed : 'unlimited'} seats`
      + (r.overage > 0 ? `, ${r.overage} over (billed as overage)` : ', no overage');
    report.hidden = false;
    return { auditor: true };
  } catch {
    report.hidden = true;
    return { auditor: false };
  }
}
