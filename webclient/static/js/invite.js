// Bringing people into a live session, and handing it over (the console).
//
// In a session: the colleagues of the organisation with their presence
// (GET /v1/presence, or GET /v1/specialists where presence is not served), each
// with "Invite" and "Hand over"; a form that makes an outside expert's one-off
// link (shown for copying); the session's invitations with "Revoke".
// Anywhere in the console: invitations addressed to this specialist
// (pushed on the staff socket, and GET /v1/invitations polled) as a banner
// with "Join", which opens the session like the session list does.

import { $, el, notify, setStatus } from './ui.js';

// The staff socket (team.js) pushes invitations as they are made; polling is the fallback.
const POLL_MS = 15000;
const COLLEAGUES_MS = 30000;

const KIND_LABELS = { colleague: 'Colleague', expert: 'Expert', handover: 'Hand-over' };

/** The specialist id inside a console token (its `sub`), or ''. */
function subjectOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part)).sub ?? '';
  } catch {
    return '';
  }
}

export class Invitations {
  #api;
  #token;
  #sessionId;
  #leave;
  #sessionShown = '';
  #colleaguesAt = 0;
  #dismissed = new Set();
  #timer = 0;
  #busy = false;
  #again = false; // asked to refresh while refreshing

  /**
   * @param {object} opts
   * @param {(method: string, path: string, body?: object) => Promise<any>} opts.api  the console's API helper
   * @param {() => string} opts.token  the console token ('' when signed in by a link or not at all)
   * @param {() => string|null} opts.sessionId  the session the console is in, if any
   * @param {() => void} opts.leave  leaves the current session (after handing it over)
   */
  constructor({ api, token, sessionId, leave }) {
    this.#api = api;
    this.#token = token;
    this.#sessionId = sessionId;
    this.#leave = leave;
    $('expert-form')?.addEventListener('submit', (ev) => this.#inviteExpert(ev));
    document.addEventListener('staff-notice', ({ detail }) => {
      if (detail?.type === 'invitation') this.refresh();
    });
    this.#timer = setInterval(() => this.refresh(), POLL_MS);
    this.refresh();
  }

  /** Looks again now (a staff push said something changed). */
  async refresh() {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    try {
      const token = this.#token();
      const panel = $('invite-panel');
      if (panel) panel.hidden = !token;
      if (!token) {
        this.#renderBanner([]);
        return;
      }
      const sid = this.#sessionId() ?? '';
      if (sid !== this.#sessionShown) {
        this.#sessionShown = sid;
        this.#colleaguesAt = 0;
        $('expert-link-row').hidden = true;
        $('invite-list').replaceChildren();
      }
      // One request at a time: the console has other things to fetch.
      await this.#loadMine();
      if (sid) {
        if (Date.now() - this.#colleaguesAt > COLLEAGUES_MS) await this.#loadColleagues(subjectOf(token));
        await this.#loadSessionInvitations(sid);
      }
    } finally {
      this.#busy = false;
      if (this.#again) {
        this.#again = false;
        this.refresh();
      }
    }
  }

  async #loadMine() {
    try {
      const mine = await this.#api('GET', '/v1/invitations');
      this.#renderBanner(Array.isArray(mine?.data) ? mine.data : []);
    } catch {
      // Signed out or offline: the console says so elsewhere.
    }
  }

  #renderBanner(list) {
    const banner = $('invitation-banner');
    if (!banner) return;
    const current = this.#sessionId();
    const open = list.filter((i) => !this.#dismissed.has(i.id) && i.session_id !== current);
    banner.replaceChildren(...open.map((inv) => {
      const who = inv.invited_by_name || 'A colleague';
      const text = inv.kind === 'handover'
        ? `${who} is handing a session over to you.`
        : `${who} invites you to join a session.`;
      return el('div', { class: 'invitation', dataset: { testid: 'invitation', invitationId: inv.id } },
        el('span', { class: 'invitation-text', text }),
        el('button', {
          type: 'button', class: 'button primary', dataset: { testid: 'invitation-join' }, text: 'Join',
          on: { click: () => { this.#dismissed.add(inv.id); banner.replaceChildren(); window.location.hash = `session=${encodeURIComponent(inv.session_id)}`; } },
        }),
        el('button', {
          type: 'button', class: 'button subtle', text: 'Dismiss',
          on: { click: () => { this.#dismissed.add(inv.id); this.#renderBanner(list); } },
        }));
    }));
    banner.hidden = open.length === 0;
  }

  async #loadColleagues(me) {
    let people = [];
    try {
      const p = await this.#api('GET', '/v1/presence');
      people = (p?.data ?? []).map((x) => ({ id: x.specialist_id, name: x.name, status: x.status }));
    } catch {
      try {
        const s = await this.#api('GET', '/v1/specialists');
        people = (s?.data ?? []).map((x) => ({ id: x.id, name: x.name, status: '' }));
      } catch (err) {
        notify(`Colleagues could not be loaded: ${err.message}`);
        return;
      }
    }
    this.#colleaguesAt = Date.now();
    const list = $('invite-colleagues');
    const others = people.filter((p) => p.id && p.id !== me);
    list.replaceChildren(...others.map((p) => el('li', { class: 'person', dataset: { testid: 'colleague', specialistId: p.id } },
      el('span', { class: 'person-name', text: p.name || 'Specialist' }),
      p.status ? el('span', { class: `presence presence-${p.status}`, text: p.status }) : null,
      el('span', { class: 'person-actions' },
        el('button', { type: 'button', class: 'button', dataset: { testid: 'colleague-invite' }, text: 'Invite', on: { click: (ev) => this.#inviteColleague(p, ev.currentTarget) } }),
        el('button', { type: 'button', class: 'button', dataset: { testid: 'colleague-handover' }, text: 'Hand over', on: { click: (ev) => this.#handOver(p, ev.currentTarget) } })))));
    $('invite-colleagues-empty').hidden = others.length > 0;
  }

  async #loadSessionInvitations(sid) {
    let list;
    try {
      list = (await this.#api('GET', `/v1/sessions/${encodeURIComponent(sid)}/invitations`))?.data ?? [];
    } catch {
      return;
    }
    if (sid !== this.#sessionId()) return;
    $('invite-list').replaceChildren(...list.filter((i) => i.state === 'pending' || i.state === 'accepted').map((inv) => {
      const label = `${KIND_LABELS[inv.kind] ?? inv.kind}: ${inv.name || inv.specialist_id || ''} · ${inv.state}`;
      return el('li', { class: 'invite-item', dataset: { testid: 'invite-item', invitationId: inv.id } },
        el('span', { text: label }),
        inv.kind === 'expert'
          ? el('button', { type: 'button', class: 'button subtle', dataset: { testid: 'invite-revoke' }, text: 'Revoke', on: { click: () => this.#revoke(sid, inv.id) } })
          : null);
    }));
  }

  async #inviteColleague(person, button) {
    const sid = this.#sessionId();
    if (!sid) return;
    button.disabled = true;
    try {
      await this.#api('POST', `/v1/sessions/${encodeURIComponent(sid)}/invitations`, { kind: 'colleague', specialist_id: person.id });
      setStatus(`${person.name} is invited`);
      await this.#loadSessionInvitations(sid);
    } catch (err) {
      notify(`${person.name} could not be invited: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async #handOver(person, button) {
    const sid = this.#sessionId();
    if (!sid) return;
    button.disabled = true;
    try {
      await this.#api('POST', `/v1/sessions/${encodeURIComponent(sid)}/handover`, { specialist_id: person.id });
    } catch (err) {
      button.disabled = false;
      notify(`The session could not be handed over: ${err.message}`);
      return;
    }
    // The colleague takes it from here; the customer stays connected.
    notify(`The session is handed over to ${person.name}.`, { kind: 'info' });
    this.#leave();
  }

  async #inviteExpert(ev) {
    ev.preventDefault();
    const sid = this.#sessionId();
    if (!sid) return;
    const body = { kind: 'expert' };
    const name = $('expert-name').value.trim();
    const email = $('expert-email').value.trim();
    const phone = $('expert-phone').value.trim();
    if (name) body.name = name;
    if (email) body.email = email;
    if (phone) body.phone = phone;
    const button = $('expert-invite-button');
    button.disabled = true;
    try {
      const inv = await this.#api('POST', `/v1/sessions/${encodeURIComponent(sid)}/invitations`, body);
      $('expert-link').value = inv.url ?? '';
      $('expert-link-row').hidden = !inv.url;
      $('expert-form').reset();
      await this.#loadSessionInvitations(sid);
    } catch (err) {
      notify(`The expert link could not be made: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async #revoke(sid, id) {
    try {
      await this.#api('DELETE', `/v1/sessions/${encodeURIComponent(sid)}/invitations/${encodeURIComponent(id)}`);
      if ($('expert-link-row')) $('expert-link-row').hidden = true;
      await this.#loadSessionInvitations(sid);
    } catch (err) {
      notify(`The invitation could not be revoked: ${err.message}`);
    }
  }
}

/** A line for a handover timeline entry. */
export function handoverText(payload) {
  const from = payload?.from_specialist?.name || 'The specialist';
  const to = payload?.to_specialist?.name || 'a colleague';
  return `${from} handed the session over to ${to}.`;
}

/**
 * An invited expert points at someone's video (the customer page opened with
 * an expert link): pressing on a tile shows a pointer to everyone at the same
 * spot of that video, normalised to the video frame (0..1 from the top left),
 * as the console's pointer does.
 */
export class ExpertPointer {
  #send;
  #role;
  #participantOf;
  #target = '';
  #last = 0;

  /**
   * @param {HTMLElement} container  the remote video tiles
   * @param {object} opts
   * @param {(type: string, payload: object) => boolean} opts.send
   * @param {() => string|null} opts.role  the page's role in the session
   * @param {(streamId: string) => string} opts.participantOf  the participant id of a tile's stream
   */
  constructor(container, { send, role, participantOf }) {
    this.#send = send;
    this.#role = role;
    this.#participantOf = participantOf;
    container.addEventListener('pointerdown', (ev) => this.#move(ev, true));
    container.addEventListener('pointermove', (ev) => { if (this.#target) this.#move(ev, false); });
    for (const type of ['pointerup', 'pointercancel', 'pointerleave']) container.addEventListener(type, () => this.#hide());
  }

  #move(ev, start) {
    if (this.#role() !== 'expert') return;
    const video = ev.target.closest?.('.tile')?.querySelector('.tile-video');
    if (!video || !video.videoWidth) return;
    const pid = this.#participantOf(video.closest('.tile').dataset.streamId ?? '');
    if (!pid) return;
    const now = Date.now();
    if (!start && now - this.#last < 50) return; // about 20 moves a second
    this.#last = now;
    // The frame inside the element (object-fit: contain letterboxes it).
    const box = video.getBoundingClientRect();
    const scale = Math.min(box.width / video.videoWidth, box.height / video.videoHeight);
    const w = video.videoWidth * scale;
    const h = video.videoHeight * scale;
    const x = (ev.clientX - box.left - (box.width - w) / 2) / w;
    const y = (ev.clientY - box.top - (box.height - h) / 2) / h;
    if (x < 0 || x > 1 || y < 0 || y > 1) return;
    this.#target = `video:${pid}`;
    this.#send('pointer', { target: this.#target, x, y, visible: true });
  }

  #hide() {
    if (!this.#target) return;
    this.#send('pointer', { target: this.#target, x: 0, y: 0, visible: false });
    this.#target = '';
  }
}
