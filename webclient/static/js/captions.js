// Live captions (docs/design.md, "Live captions and translation"): a strip over the
// video with the latest words of the other participants, in this reader's language (the
// original beside a translation), and a toggle that hides it. The server sends `captions`
// (whether captions run, and when they pause) and `caption` (one utterance); a page hands
// every server message to handle() first.

import { el } from './ui.js';

const SHOWN = 3; // lines on the strip
const LINGER_MS = 12000; // a line leaves the strip after this

/**
 * What this reader speaks and reads, sent in join: a `lang` query parameter on the page's
 * link (an operator can send a link in the customer's language), else the browser's.
 */
export function readerLanguage() {
  const asked = new URLSearchParams(location.search).get('lang') ?? '';
  const lang = /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$/.test(asked) ? asked : (navigator.language ?? '');
  return lang.slice(0, 35);
}

export class CaptionsStrip {
  #strip;
  #toggle;
  #status;
  #nameOf;
  #on = true;
  #available = false;

  /**
   * @param {object} opts
   * @param {HTMLElement} opts.strip   the strip (its own markup block on the page)
   * @param {HTMLButtonElement} opts.toggle  the toolbar button that shows or hides it
   * @param {(from: object) => string} [opts.nameOf]  a speaker's display name
   */
  constructor({ strip, toggle, nameOf = (from) => from?.name || 'Participant' }) {
    this.#strip = strip;
    this.#toggle = toggle;
    this.#nameOf = nameOf;
    this.#status = el('p', { class: 'captions-status', dataset: { testid: 'captions-status' }, hidden: true });
    this.#strip.replaceChildren(this.#status);
    this.#toggle.addEventListener('click', () => this.#set(!this.#on));
    this.#render();
  }

  /** Takes a server message; true when it was about captions. */
  handle(type, payload, live = true) {
    if (type === 'captions') {
      this.#available = !!payload.available;
      this.#status.hidden = !payload.paused;
      this.#status.textContent = payload.paused ? 'Captions are paused for a moment.' : '';
      this.#render();
      return true;
    }
    if (type !== 'caption') return false;
    if (!live) return true; // the transcript stays in the timeline; the strip is live only
    this.#available = true;
    this.#status.hidden = true;
    this.#add(payload);
    this.#render();
    return true;
  }

  /** Clears the strip (the call ended or another session opens). */
  reset() {
    this.#available = false;
    for (const line of this.#strip.querySelectorAll('.caption-line')) line.remove();
    this.#status.hidden = true;
    this.#render();
  }

  #add(c) {
    const translated = typeof c.original_text === 'string' && c.original_text !== '';
    const line = el('p', { class: 'caption-line', dataset: { testid: 'caption', seq: String(c.seq ?? '') }, lang: c.language || false },
      el('span', { class: 'caption-speaker', text: `${this.#nameOf(c.from)}: ` }),
      el('span', { class: 'caption-text', dataset: { testid: 'caption-text' }, text: String(c.text ?? '') }),
      translated
        ? el('span', { class: 'caption-original', dataset: { testid: 'caption-original' }, lang: c.original_language || false, text: ` (${c.original_text})` })
        : null);
    this.#strip.append(line);
    const lines = this.#strip.querySelectorAll('.caption-line');
    for (let i = 0; i < lines.length - SHOWN; i++) lines[i].remove();
    setTimeout(() => line.remove(), LINGER_MS);
  }

  #set(on) {
    this.#on = on;
    this.#render();
  }

  #render() {
    this.#toggle.hidden = !this.#available;
    this.#toggle.setAttribute('aria-pressed', String(this.#on));
    this.#strip.hidden = !(this.#available && this.#on);
  }
}
