// The console's live side outside a call: the staff socket (/v1/staff) with the colleagues'
// presence and one's own, the specialists' chat (team channel and one-to-one, unread
// counts) and the organisation's live queue (orgqueue.js). Notices from the server (a session
// transferred to me, a customer offered to me) show as notices.

import { $, el, notify } from './ui.js';
import { OrgQueue } from './orgqueue.js';

const STATUS_TEXT = { available: 'Available', busy: 'Busy', away: 'Away', offline: 'Offline' };
const MAX_MESSAGES = 300; // kept per channel on the page

function staffURL(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/v1/staff`;
}

export class StaffConsole {
  #token;
  #ws = null;
  #wanted = '';       // the token the socket was opened with
  #retry = 0;
  #retryTimer = 0;
  #me = '';
  #presence = [];
  #channel = 'team';  // the chat channel shown
  #messages = new Map(); // channel → [message]
  #unread = {};
  #queue;

  /** token() is the console token, or '' when not signed in; open(sessionId) opens a session. */
  constructor({ token, open }) {
    this.#token = token;
    this.#queue = new OrgQueue({ send: (type, payload) => this.send(type, payload), open });
    $('presence-select')?.addEventListener('change', (e) => this.send('presence_set', { status: e.target.value }));
    $('team-chat-form')?.addEventListener('submit', (e) => {
      e.preventDefault();
      const input = $('team-chat-input');
      const text = input.value.trim();
      if (!text) return;
      if (this.send('team_send', { to: this.#channel, text })) input.value = '';
      else notify('Not connected; try again in a moment.');
    });
    $('team-channel-team')?.addEventListener('click', () => this.#showChannel('team'));
  }

  /** Connects when signed in, disconnects when not (call on every route). */
  sync() {
    const token = this.#token();
    if (token === this.#wanted) return;
    this.#close();
    this.#wanted = token;
    $('team-panel').hidden = !token;
    if (token) this.#connect();
  }

  send(type, payload) {
    if (this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify({ type, payload }));
    return true;
  }

  #close() {
    clearTimeout(this.#retryTimer);
    if (this.#ws) {
      this.#ws.onclose = null;
      this.#ws.close();
      this.#ws = null;
    }
    this.#messages.clear();
    this.#unread = {};
  }

  #connect() {
    const token = this.#wanted;
    const ws = new WebSocket(staffURL());
    this.#ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'staff_hello', payload: { token } }));
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      this.#handle(msg.type, msg.payload ?? {});
    };
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      $('team-panel').dataset.connected = 'false';
      if (e.code === 1008) return; // refused (a bad or expired token): the API's 401 signs out
      const wait = Math.min(30000, 500 * 2 ** this.#retry++);
      this.#retryTimer = setTimeout(() => { if (this.#wanted === token) this.#connect(); }, wait);
    };
  }

  #handle(type, p) {
    switch (type) {
      case 'staff_welcome':
        this.#retry = 0;
        this.#me = p.specialist_id;
        this.#queue.me = p.specialist_id;
        this.#messages.clear();
        $('team-panel').dataset.connected = 'true';
        break;
      case 'presence':
        this.#presence = Array.isArray(p.specialists) ? p.specialists : [];
        this.#renderPresence();
        break;
      case 'team_message':
        this.#addMessage(p);
        break;
      case 'team_unread':
        this.#unread = p.unread ?? {};
        this.#markShownRead();
        this.#renderChannels();
        break;
      case 'org_queue':
        this.#queue.update(p);
        break;
      case 'staff_done':
        if (p.action === 'admit') this.#queue.admitted(p.session_id);
        if (p.action === 'transfer') notify('Transferred.', { kind: 'info', timeout: 4000 });
        break;
      case 'session_assigned':
        notify(`${p.by_name || 'A colleague'} transferred ${p.waiting_for || 'a waiting customer'} to you.`, { kind: 'info' });
        break;
      case 'queue_offer':
        notify(`${p.name || 'A customer'} is waiting for a call.`, { kind: 'info', timeout: 15000 });
        break;
      case 'error':
        notify(p.message || 'The console could not do that.');
        break;
      default:
        // notices of other features (invitations, ...) are handled where they belong
        document.dispatchEvent(new CustomEvent('staff-notice', { detail: { type, payload: p } }));
    }
  }

  #renderPresence() {
    const mine = this.#presence.find((e) => e.specialist_id === this.#me);
    if (mine) {
      $('presence-select').value = mine.manual;
      $('presence-mine').textContent = STATUS_TEXT[mine.status] ?? mine.status;
      $('presence-mine').dataset.status = mine.status;
    }
    const colleagues = this.#presence.filter((e) => e.specialist_id !== this.#me);
    this.#queue.colleagues = colleagues;
    $('presence-list').replaceChildren(...colleagues.map((e) => el('li', {
      class: 'presence-item', 'data-testid': 'presence-item', dataset: { specialistId: e.specialist_id, status: e.status },
    },
    el('span', { class: `presence-dot presence-${e.status}`, 'aria-hidden': 'true' }),
    el('span', { class: 'presence-name', text: e.name }),
    el('span', { class: 'presence-status fineprint', text: STATUS_TEXT[e.status] ?? e.status, 'data-testid': 'presence-status' }))));
    this.#renderChannels();
  }

  #addMessage(m) {
    const list = this.#messages.get(m.channel) ?? [];
    if (list.some((x) => x.seq === m.seq)) return;
    list.push(m);
    list.sort((a, b) => a.seq - b.seq);
    if (list.length > MAX_MESSAGES) list.splice(0, list.length - MAX_MESSAGES);
    this.#messages.set(m.channel, list);
    if (!m.history && m.from !== this.#me) {
      if (m.channel === this.#channel && !document.hidden && !$('team-panel').hidden) this.#read(m.channel, m.seq);
      else this.#unread[m.channel] = (this.#unread[m.channel] ?? 0) + 1;
    }
    this.#renderChannels();
    if (m.channel === this.#channel) this.#renderMessages();
  }

  #showChannel(channel) {
    this.#channel = channel;
    this.#markShownRead();
    this.#renderChannels();
    this.#renderMessages();
    $('team-chat-input').focus();
  }

  #markShownRead() {
    const list = this.#messages.get(this.#channel) ?? [];
    if ((this.#unread[this.#channel] ?? 0) > 0 && list.length > 0) this.#read(this.#channel, list[list.length - 1].seq);
  }

  #read(channel, seq) {
    this.#unread[channel] = 0;
    this.send('team_read', { channel, seq });
  }

  #renderChannels() {
    const badge = (channel) => {
      const n = this.#unread[channel] ?? 0;
      return el('span', { class: 'badge team-unread', hidden: n === 0, text: String(n), 'data-testid': 'team-unread' });
    };
    const team = $('team-channel-team');
    team.replaceChildren('Team ', badge('team'));
    team.setAttribute('aria-pressed', String(this.#channel === 'team'));
    team.dataset.unread = String(this.#unread.team ?? 0);
    const colleagues = this.#presence.filter((e) => e.specialist_id !== this.#me);
    $('team-channels').replaceChildren(...colleagues.map((e) => {
      const b = el('button', {
        type: 'button', class: 'button subtle team-channel', 'aria-pressed': String(this.#channel === e.specialist_id),
        'data-testid': 'team-channel', dataset: { channel: e.specialist_id, unread: String(this.#unread[e.specialist_id] ?? 0) },
        on: { click: () => this.#showChannel(e.specialist_id) },
      },
      el('span', { class: `presence-dot presence-${e.status}`, 'aria-hidden': 'true' }), `${e.name} `, badge(e.specialist_id));
      return b;
    }));
    const total = Object.values(this.#unread).reduce((a, n) => a + n, 0);
    $('team-unread-total').textContent = String(total);
    $('team-unread-total').hidden = total === 0;
  }

  #renderMessages() {
    const list = this.#messages.get(this.#channel) ?? [];
    const names = new Map(this.#presence.map((e) => [e.specialist_id, e.name]));
    $('team-messages').replaceChildren(...list.map((m) => el('li', {
      class: `team-message${m.from === this.#me ? ' mine' : ''}`, 'data-testid': 'team-message',
    },
    el('span', { class: 'team-message-from', text: m.from === this.#me ? 'You' : (m.from_name || names.get(m.from) || '') }),
    el('span', { class: 'team-message-text', text: m.text }))));
    const box = $('team-messages');
    box.scrollTop = box.scrollHeight;
  }
}
