// The console's inbox of video messages: customers nobody could take left
// them (GET /v1/video-messages). A specialist plays one (its signed download
// URL), marks it handled, calls the customer back (a new session whose link
// goes out by email and SMS) or deletes it.

import { $, el, formatDateTime } from './ui.js';

const REASONS = { queue_timeout: 'nobody could take the call', after_hours: 'outside opening hours' };

function seconds(ms) {
  const s = Math.round(Number(ms) / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

export class Inbox {
  #api;
  #failed;
  #showHandled = false;
  #loading = false;

  /**
   * @param {{api: (method: string, path: string, body?: object) => Promise<any>,
   *          failed: (err: Error, what: string) => void}} opts
   */
  constructor({ api, failed }) {
    this.#api = api;
    this.#failed = failed;
    $('inbox-refresh')?.addEventListener('click', () => this.load());
    $('inbox-show-handled')?.addEventListener('change', (e) => {
      this.#showHandled = e.target.checked;
      this.load();
    });
  }

  /** Loads the newest messages (new ones only, unless "show handled" is ticked). */
  async load() {
    const list = $('inbox-list');
    if (!list || this.#loading) return;
    this.#loading = true;
    try {
      const q = new URLSearchParams({ limit: '50' });
      if (!this.#showHandled) q.set('state', 'new');
      const page = await this.#api('GET', `/v1/video-messages?${q}`);
      const items = Array.isArray(page?.data) ? page.data : [];
      list.replaceChildren(...items.map((m) => this.#item(m)));
      $('inbox-empty').hidden = items.length > 0;
      $('inbox-count').textContent = String(items.filter((m) => m.state === 'new').length);
    } catch (err) {
      this.#failed(err, 'The messages could not be loaded');
    } finally {
      this.#loading = false;
    }
  }

  #item(m) {
    const c = m.customer ?? {};
    const contact = [c.phone, c.email].filter(Boolean).join(' · ');
    const li = el('li', { class: `inbox-item ${m.state === 'handled' ? 'handled' : ''}`, dataset: { testid: 'inbox-item', messageId: m.id, state: m.state } },
      el('div', { class: 'inbox-head' },
        el('strong', { text: c.name || 'Customer' }),
        contact ? ` · ${contact}` : '',
        el('span', { class: 'fineprint', text: ` · ${formatDateTime(m.created_at)} · ${seconds(m.duration_ms)} · ${REASONS[m.reason] ?? m.reason}` })),
      el('p', { class: 'inbox-status fineprint', dataset: { testid: 'inbox-status' }, text: this.#statusText(m) }));
    const actions = el('div', { class: 'panel-actions' },
      el('button', { type: 'button', class: 'button', text: 'Play', dataset: { testid: 'inbox-play' }, on: { click: () => this.#play(m, li) } }),
      m.state !== 'handled'
        ? el('button', { type: 'button', class: 'button', text: 'Mark handled', dataset: { testid: 'inbox-handled' }, on: { click: () => this.#mark(m, 'handled') } })
        : el('button', { type: 'button', class: 'button subtle', text: 'Mark new', on: { click: () => this.#mark(m, 'new') } }),
      !m.call_back && (c.phone || c.email)
        ? el('button', { type: 'button', class: 'button primary', text: 'Call back', dataset: { testid: 'inbox-call-back' }, on: { click: (e) => this.#callBack(m, e.target) } })
        : null,
      el('button', { type: 'button', class: 'button subtle danger-text', text: 'Delete', on: { click: () => this.#delete(m) } }));
    li.append(actions);
    return li;
  }

  #statusText(m) {
    const parts = [m.state === 'handled' ? 'Handled' : 'New'];
    if (m.call_back) {
      const sent = (m.call_back.notifications ?? []).filter((n) => n.state === 'sent').map((n) => n.channel);
      parts.push(`called back (${(m.call_back.channels ?? []).join(', ')})${sent.length ? `, link sent by ${sent.join(' and ')}` : ''}`);
    }
    return parts.join(' · ');
  }

  async #play(m, li) {
    try {
      const full = await this.#api('GET', `/v1/video-messages/${encodeURIComponent(m.id)}`);
      let video = li.querySelector('video');
      if (!video) {
        video = el('video', { class: 'inbox-video', controls: true, playsinline: true, preload: 'auto', dataset: { testid: 'inbox-video' } });
        li.append(video);
      }
      video.src = full.download_url;
      $('inbox-list').dataset.playing = m.id;
      li.querySelector('[data-testid="inbox-status"]').textContent = this.#statusText(full);
      await video.play().catch(() => {
        video.muted = true; // autoplay rules: start muted, the controls unmute
        return video.play();
      });
    } catch (err) {
      this.#failed(err, 'The message could not be played');
    }
  }

  async #mark(m, state) {
    try {
      await this.#api('PATCH', `/v1/video-messages/${encodeURIComponent(m.id)}`, { state });
      this.load();
    } catch (err) {
      this.#failed(err, 'The message could not be changed');
    }
  }

  async #callBack(m, button) {
    button.disabled = true;
    try {
      const res = await this.#api('POST', `/v1/video-messages/${encodeURIComponent(m.id)}/call-back`, {});
      await this.load();
      if (res?.call_back?.specialist_url) window.open(res.call_back.specialist_url, '_blank', 'noopener');
    } catch (err) {
      button.disabled = false;
      this.#failed(err, 'The customer could not be called back');
    }
  }

  async #delete(m) {
    if (!window.confirm('Delete this message for good?')) return;
    try {
      await this.#api('DELETE', `/v1/video-messages/${encodeURIComponent(m.id)}`);
      this.load();
    } catch (err) {
      this.#failed(err, 'The message could not be deleted');
    }
  }
}
