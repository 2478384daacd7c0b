// DOM helpers shared by the pages. User-supplied text only ever reaches the
// page through textContent (el() and its `text` prop), never as HTML.

export const $ = (id) => document.getElementById(id);

/**
 * Creates an element. props: `class`, `text`, `dataset` (object), `on`
 * (object of event listeners), anything else becomes an attribute (true →
 * empty attribute, false/null/undefined → none). Children: nodes or strings.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === false || value == null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'on') for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child == null || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** The page state that tests and CSS read: document.body.dataset.state. */
export function setState(state) {
  document.body.dataset.state = state;
}

/** Shows the view with this id and hides the other views (elements with class "view"). */
export function showView(id) {
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== id;
}

/** The polite status line (#status, role=status). */
export function setStatus(text) {
  const status = $('status');
  if (status && status.textContent !== text) status.textContent = text;
}

/** A dismissible, non-fatal message in #notices. */
export function notify(text, { kind = 'error', timeout = 10000 } = {}) {
  const box = $('notices');
  if (!box) return;
  const item = el('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    el('span', { class: 'notice-text', text }));
  const close = () => item.remove();
  item.append(el('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss', text: '×', on: { click: close } }));
  box.append(item);
  while (box.children.length > 3) box.firstElementChild.remove();
  if (timeout > 0) setTimeout(close, timeout);
}

/** Removes all notices (when the view they were about is gone). */
export function clearNotices() {
  $('notices')?.replaceChildren();
}

/** "just now", "3 min", "1 h 5 min" since the given time. */
export function waitedFor(since, now = Date.now()) {
  const t = Date.parse(since);
  if (Number.isNaN(t)) return '';
  const minutes = Math.floor(Math.max(0, now - t) / 60000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A local date and time for lists. */
export function formatDateTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  return new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Sets a toggle button's pressed state and label. */
export function setToggle(button, pressed, label) {
  button.setAttribute('aria-pressed', String(pressed));
  const text = button.querySelector('.label');
  if (text) text.textContent = label;
  else button.textContent = label;
}

/**
 * The remote videos: one tile (a <video> and a caption) per remote
 * MediaStream. The container's data-count drives the CSS layout.
 */
export class VideoGrid {
  #container;
  #labelFor;
  #tiles = new Map(); // stream id → {tile, video, caption, stream, cleanup}

  /**
   * @param {HTMLElement} container
   * @param {(stream: MediaStream) => string} labelFor  a caption for a stream ('' for none)
   */
  constructor(container, labelFor = () => '') {
    this.#container = container;
    this.#labelFor = labelFor;
    this.#update();
  }

  get size() {
    return this.#tiles.size;
  }

  add(stream) {
    if (this.#tiles.has(stream.id)) return;
    const video = el('video', { class: 'tile-video', autoplay: true, playsinline: true });
    const caption = el('figcaption', { class: 'tile-caption' });
    const unmute = el('button', { type: 'button', class: 'tile-unmute', hidden: true, text: 'Tap to turn on sound' });
    const tile = el('figure', { class: 'tile', dataset: { streamId: stream.id } }, video, caption, unmute);
    video.srcObject = stream;

    const classify = () => {
      const v = stream.getVideoTracks();
      tile.classList.toggle('audio-only', v.length === 0);
      tile.classList.toggle('video-muted', v.length > 0 && v.every((t) => t.muted || !t.enabled));
    };
    const watch = (track) => {
      track.addEventListener('mute', classify);
      track.addEventListener('unmute', classify);
    };
    stream.getTracks().forEach(watch);
    stream.addEventListener('addtrack', (ev) => { watch(ev.track); classify(); });
    stream.addEventListener('removetrack', classify);
    classify();

    unmute.addEventListener('click', () => {
      video.muted = false;
      video.play().catch(() => {});
      unmute.hidden = true;
    });
    video.play().catch((err) => {
      if (err.name !== 'NotAllowedError') return;
      // Autoplay with sound was refused (no user gesture yet): play muted
      // and offer a button to turn the sound on.
      video.muted = true;
      unmute.hidden = false;
      video.play().catch(() => {});
    });

    this.#tiles.set(stream.id, { tile, video, caption, stream });
    this.#container.append(tile);
    this.relabel();
    this.#update();
  }

  remove(stream) {
    const entry = this.#tiles.get(stream.id);
    if (!entry) return;
    entry.video.srcObject = null;
    entry.tile.remove();
    this.#tiles.delete(stream.id);
    this.#update();
  }

  clear() {
    for (const entry of this.#tiles.values()) this.remove(entry.stream);
  }

  /** Recomputes the captions (after the roster changed). */
  relabel() {
    for (const { caption, video, stream } of this.#tiles.values()) {
      const label = this.#labelFor(stream);
      caption.textContent = label;
      caption.hidden = !label;
      video.setAttribute('aria-label', label ? `Video of ${label}` : 'Video of a participant');
    }
  }

  #update() {
    this.#container.dataset.count = String(this.#tiles.size);
  }
}

/**
 * Test and support hooks: window.assistDebug = {pc(), framesDecoded(), state(), …}.
 * @param {() => import('./call.js').Call|null} getCall
 */
export function installDebug(getCall, extra = {}) {
  window.assistDebug = Object.freeze({
    pc: () => getCall()?.pc ?? null,
    framesDecoded: async () => (await getCall()?.framesDecoded()) ?? 0,
    state: () => document.body.dataset.state ?? '',
    ...extra,
  });
}
