// The organisation's live queue in the console (org_queue on the staff socket): everyone
// waiting in any of the organisation's sessions, with how long, appointment or ad hoc, the
// device-check verdict and the language; admit, turn away with a reason, or transfer to a
// colleague from here. Sessions transferred to this specialist come first.

import { $, el, waitedFor } from './ui.js';

const VERDICTS = { good: 'Device check: good', may_be_poor: 'Device check: may be poor', will_not_work: 'Device check: will not work' };

export class OrgQueue {
  #send;
  #open;
  #me = '';
  #waiting = [];
  #colleagues = [];
  #timer = 0;

  /**
   * send(type, payload) → bool sends on the staff socket; open(sessionId) opens a session
   * (after admitting its customer).
   */
  constructor({ send, open }) {
    this.#send = send;
    this.#open = open;
    this.#timer = setInterval(() => this.#render(), 30000);
  }

  set me(id) { this.#me = id; }

  /** Colleagues for the transfer menu: [{specialist_id, name, status}]. */
  set colleagues(list) {
    this.#colleagues = list;
    this.#render();
  }

  update(queue) {
    this.#waiting = Array.isArray(queue?.waiting) ? queue.waiting : [];
    this.#render();
  }

  /** An admission this console asked for succeeded: open the session. */
  admitted(sessionId) {
    this.#open(sessionId);
  }

  #render() {
    const list = $('org-queue-list');
    if (!list) return;
    $('org-queue-count').textContent = String(this.#waiting.length);
    $('org-queue-empty').hidden = this.#waiting.length > 0;
    list.replaceChildren(...this.#waiting.map((w) => this.#item(w)));
  }

  #item(w) {
    const mine = w.assigned_to && w.assigned_to === this.#me;
    const facts = [w.kind === 'appointment' ? 'Appointment' : 'Ad hoc', `waiting ${waitedFor(w.since)}`];
    if (w.language) facts.push(`speaks ${w.language}`);
    if (w.reconnecting) facts.push('reconnecting');
    const verdict = VERDICTS[w.diagnostics];
    const transferSelect = el('select', { 'aria-label': `Transfer ${w.name} to`, 'data-testid': 'org-queue-transfer-to' },
      el('option', { value: '', text: 'Transfer to…' }),
      ...this.#colleagues.filter((c) => c.specialist_id !== this.#me)
        .map((c) => el('option', { value: c.specialist_id, text: `${c.name} (${c.status})` })));
    transferSelect.addEventListener('change', () => {
      if (transferSelect.value) this.#send('queue_transfer', { session_id: w.session_id, specialist_id: transferSelect.value });
    });
    return el('li', {
      class: `org-queue-item${mine ? ' assigned-to-me' : ''}`, 'data-testid': 'org-queue-item',
      dataset: { sessionId: w.session_id, participantId: w.participant_id },
    },
    el('span', { class: 'org-queue-position', text: `${w.position}.` }),
    el('span', { class: 'org-queue-name', text: w.name || 'Customer', 'data-testid': 'org-queue-name' }),
    el('span', { class: 'fineprint', text: facts.join(' · ') }),
    verdict ? el('span', { class: `org-queue-verdict verdict-${w.diagnostics}`, text: verdict, 'data-testid': 'org-queue-verdict' }) : null,
    w.assigned_to ? el('span', { class: 'fineprint org-queue-assigned', text: mine ? 'Transferred to you' : `For ${w.assigned_to_name || 'a colleague'}` }) : null,
    el('span', { class: 'org-queue-actions' },
      el('button', { type: 'button', class: 'button primary', text: 'Admit', 'data-testid': 'org-queue-admit',
        on: { click: () => this.#send('queue_admit', { session_id: w.session_id, participant_id: w.participant_id }) } }),
      el('button', { type: 'button', class: 'button subtle', text: 'Turn away', 'data-testid': 'org-queue-deny',
        on: { click: (e) => this.#askReason(e.currentTarget, w) } }),
      transferSelect));
  }

  #askReason(button, w) {
    const form = el('form', { class: 'org-queue-deny-form' });
    const input = el('input', { type: 'text', maxlength: '200', placeholder: 'Reason for the customer', 'aria-label': 'Reason', 'data-testid': 'org-queue-deny-reason' });
    form.append(input, el('button', { type: 'submit', class: 'button danger', text: 'Turn away', 'data-testid': 'org-queue-deny-confirm' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#send('queue_deny', { session_id: w.session_id, participant_id: w.participant_id, reason: input.value.trim() });
      form.remove();
    });
    button.parentElement.after(form);
    input.focus();
  }
}
