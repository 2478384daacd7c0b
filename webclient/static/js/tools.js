// The in-session tools that both pages share (docs/design.md, "In-session
// tools"): the chat and event timeline, uploads, and the annotation layer
// drawn over a video at coordinates normalised to the video frame.

import { el, formatDateTime } from './ui.js';

/** "1.2 MB", "830 B". */
export function formatBytes(n) {
  const v = Number(n);
  if (!Number.isFinite(v) || v < 0) return '';
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KB`;
  return `${(v / (1024 * 1024)).toFixed(1)} MB`;
}

/** A local time of day for a message. */
export function formatTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  return new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/**
 * POSTs raw bytes to an upload route (files or snapshots) with the page's
 * bearer token; resolves to the stored object's info, rejects with the
 * server's problem detail.
 */
export async function upload(path, token, body) {
  let res;
  try {
    res = await fetch(path, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json, application/problem+json' },
      body,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new Error('the server could not be reached');
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) throw new Error(data?.detail || data?.title || `upload failed (${res.status})`);
  return data;
}

/** Uploads a File the user picked to the session's shared files. */
export function uploadFile(sessionId, token, file) {
  return upload(`/v1/sessions/${encodeURIComponent(sessionId)}/files?name=${encodeURIComponent(file.name)}`, token, file);
}

/** A person's name for a message's `from`. */
export function senderName(from, selfId) {
  if (!from) return '';
  if (from.participant_id && from.participant_id === selfId) return 'You';
  return from.name || (from.role === 'specialist' ? 'Specialist' : 'Customer');
}

/**
 * The chat and what happened in the session, in one list: messages are
 * de-duplicated by id (the server echoes ours, history repeats on rejoin)
 * and kept in time order.
 */
export class Timeline {
  #list;
  #selfId;
  #seen = new Set();
  #seq = 0;

  /**
   * @param {HTMLElement} list  an <ol>
   * @param {() => string|null} selfId  this page's participant id
   */
  constructor(list, selfId) {
    this.#list = list;
    this.#selfId = selfId;
  }

  get size() {
    return this.#list.children.length;
  }

  clear() {
    this.#seen.clear();
    this.#list.replaceChildren();
  }

  /** Adds a chat message; false when it was shown already. */
  chat(msg) {
    const mine = msg.from?.participant_id && msg.from.participant_id === this.#selfId();
    return this.#add(msg, el('li', { class: `chat-item chat-message${mine ? ' mine' : ''}`, dataset: { type: 'chat' } },
      this.#head(msg),
      el('p', { class: 'chat-text', text: String(msg.text ?? '') }),
      // Translated for this reader (captions.js): the translation under the original.
      msg.translation?.text
        ? el('p', { class: 'chat-translation', lang: msg.translation.language || false, dataset: { testid: 'chat-translation', label: `(${msg.translation.language})` }, text: String(msg.translation.text) })
        : null));
  }

  /** Adds a shared file with its download link. */
  file(msg) {
    const f = msg.file ?? {};
    const link = el('a', {
      class: 'file-link', href: safeURL(f.url), download: f.name || 'file', rel: 'noopener', text: f.name || 'file',
      'data-testid': 'file-link',
    });
    return this.#add(msg, el('li', { class: 'chat-item chat-file', dataset: { type: 'file_shared', fileId: f.id ?? '' } },
      this.#head(msg),
      el('p', { class: 'chat-text' }, 'Shared a file: ', link, ` (${formatBytes(f.size)})`)));
  }

  /** Adds a one-line event ("Photo taken", "Location shared"). */
  event(msg, text, extra = null) {
    return this.#add(msg, el('li', { class: 'chat-item chat-event', dataset: { type: msg.type ?? 'event' } },
      el('span', { class: 'chat-meta', text: `${formatTime(msg.time)} ${senderName(msg.from, this.#selfId())}` }),
      el('span', { class: 'chat-event-text', text }), extra));
  }

  #head(msg) {
    return el('span', { class: 'chat-meta' },
      el('span', { class: 'chat-author', text: senderName(msg.from, this.#selfId()) }),
      ' ',
      el('time', { datetime: msg.time ?? '', title: formatDateTime(msg.time), text: formatTime(msg.time) }));
  }

  #add(msg, item) {
    const id = typeof msg.id === 'string' ? msg.id : '';
    if (id && this.#seen.has(id)) return false;
    if (id) this.#seen.add(id);
    const t = Date.parse(msg.time);
    item.dataset.id = id;
    item.dataset.t = String(Number.isNaN(t) ? Date.now() : t);
    item.dataset.seq = String(++this.#seq);
    // Insert in time order (the arrival order breaks ties).
    const at = Number(item.dataset.t);
    let before = null;
    for (let n = this.#list.lastElementChild; n; n = n.previousElementSibling) {
      if (Number(n.dataset.t) <= at) break;
      before = n;
    }
    const nearBottom = this.#list.scrollHeight - this.#list.scrollTop - this.#list.clientHeight < 40;
    this.#list.insertBefore(item, before);
    if (nearBottom || !before) this.#list.scrollTop = this.#list.scrollHeight;
    return true;
  }
}

/** Only http(s) URLs go into links and images (never javascript: or data:). */
export function safeURL(url) {
  try {
    const u = new URL(String(url ?? ''), window.location.href);
    if (u.protocol === 'http:' || u.protocol === 'https:') return u.href;
  } catch {
    // not a URL
  }
  return '#';
}

/**
 * Wires a chat form (input + submit) to a send function.
 * @param {HTMLFormElement} form
 * @param {HTMLInputElement} input
 * @param {(text: string) => boolean} send
 */
export function bindChatForm(form, input, send, onFail) {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (text.length > 2000) {
      onFail('A message can have at most 2000 characters.');
      return;
    }
    if (send(text)) input.value = '';
    else onFail('Not connected; the message was not sent.');
  });
}

// ------------------------------------------------------------ annotations

const POINTER_INTERVAL_MS = 66; // ~15 pointer messages a second

let strokeCounter = 0;
function newStrokeId() {
  strokeCounter += 1;
  const rnd = Math.random().toString(36).slice(2, 8);
  return `s${Date.now().toString(36)}${strokeCounter}${rnd}`;
}

const clamp01 = (v) => Math.min(1, Math.max(0, v));

/** The intrinsic size of a <video> frame or an <img> picture (0 × 0 before it is known). */
function mediaSize(m) {
  if (!m) return [0, 0];
  if ('videoWidth' in m) return [m.videoWidth || 0, m.videoHeight || 0];
  return [m.naturalWidth || 0, m.naturalHeight || 0];
}
const round4 = (v) => Math.round(v * 10000) / 10000;

/**
 * Strokes and a pointer drawn on a canvas that lies over a <video> (or an
 * <img>: a snapshot), at coordinates normalised to the video frame (0..1
 * from the top left of the picture itself, not of the element: object-fit
 * letterboxing and cropping are accounted for). The canvas either covers the
 * video's box exactly (same parent, inset 0) or, with `follow`, is moved over
 * it on each draw. A layer without a canvas still keeps its strokes.
 */
export class AnnotationLayer {
  canvas = null;
  video = null;
  #mirrored;
  #follow;
  #strokes = []; // confirmed strokes, in order
  #pending = new Map(); // stroke id → stroke being drawn or not yet echoed
  #pointer = null; // {x, y} or null
  #pointerTimer = 0;
  #resize = null;
  #frame = 0;

  /**
   * @param {object} [opts]
   * @param {() => boolean} [opts.mirrored]  the video is shown mirrored
   * @param {boolean} [opts.follow]  position the canvas over the video on each draw
   */
  constructor({ mirrored = () => false, follow = false } = {}) {
    this.#mirrored = mirrored;
    this.#follow = follow;
    this.#resize = new ResizeObserver(() => this.render());
  }

  /** Draws on this canvas over this video (either may be null to detach). */
  bind(canvas, video) {
    if (this.canvas === canvas && this.video === video) return;
    if (this.canvas) this.#resize.unobserve(this.canvas);
    if (this.video) {
      this.#resize.unobserve(this.video);
      this.video.removeEventListener('resize', this.#onVideoResize);
      this.video.removeEventListener('load', this.#onVideoResize);
    }
    this.canvas = canvas;
    this.video = video;
    if (canvas) this.#resize.observe(canvas);
    if (video) {
      this.#resize.observe(video);
      video.addEventListener('resize', this.#onVideoResize); // a video's frame size
      video.addEventListener('load', this.#onVideoResize); // an image's
    }
    this.render();
  }

  #onVideoResize = () => this.render();

  /** The strokes shown now (confirmed, then pending), as plain objects. */
  strokes() {
    return [...this.#strokes, ...this.#pending.values()].map((s) => ({
      id: s.id, tool: s.tool, color: s.color, width: s.width, points: s.points.map((p) => [p[0], p[1]]),
      ...(s.text ? { text: s.text } : {}),
    }));
  }

  /** The remote pointer shown now, {x, y} normalised, or null. */
  get pointerAt() {
    return this.#pointer ? { ...this.#pointer } : null;
  }

  /** Applies an `annotation` message's payload. */
  apply(payload) {
    switch (payload?.action) {
      case 'stroke': {
        const s = payload.stroke;
        if (!s || !Array.isArray(s.points)) return;
        this.#pending.delete(s.id);
        if (!this.#strokes.some((x) => x.id === s.id)) this.#strokes.push(s);
        break;
      }
      case 'undo':
        this.#strokes.pop();
        break;
      case 'clear':
        this.#strokes = [];
        this.#pending.clear();
        break;
      default:
        return;
    }
    this.render();
  }

  /** Forgets every stroke (before a history replay). */
  reset() {
    this.#strokes = [];
    this.#pending.clear();
    this.#pointer = null;
    this.render();
  }

  /** Shows or hides the remote pointer. */
  pointer({ x, y, visible }) {
    clearTimeout(this.#pointerTimer);
    this.#pointer = visible && Number.isFinite(x) && Number.isFinite(y) ? { x, y } : null;
    // A pointer that stops moving fades after a while.
    if (this.#pointer) this.#pointerTimer = setTimeout(() => { this.#pointer = null; this.render(); }, 4000);
    this.render();
  }

  setPending(stroke) {
    this.#pending.set(stroke.id, stroke);
    this.render();
  }

  dropPending(id) {
    this.#pending.delete(id);
    this.render();
  }

  /** The video frame's rectangle in the canvas's CSS pixels. */
  frameRect() {
    const c = this.canvas;
    const v = this.video;
    const w = c?.clientWidth ?? 0;
    const h = c?.clientHeight ?? 0;
    const [vw, vh] = mediaSize(v);
    if (!vw || !vh || !w || !h) return { x: 0, y: 0, w, h };
    const fit = v ? getComputedStyle(v).objectFit : 'contain';
    const scale = fit === 'cover' ? Math.max(w / vw, h / vh)
      : fit === 'fill' ? 0 : Math.min(w / vw, h / vh);
    if (!scale) return { x: 0, y: 0, w, h };
    const fw = vw * scale;
    const fh = vh * scale;
    return { x: (w - fw) / 2, y: (h - fh) / 2, w: fw, h: fh };
  }

  /** Client (viewport) coordinates → normalised frame coordinates, or null outside the frame. */
  toFrame(clientX, clientY, { clamp = false } = {}) {
    if (!this.canvas) return null;
    const box = this.canvas.getBoundingClientRect();
    const r = this.frameRect();
    if (!r.w || !r.h) return null;
    let x = (clientX - box.left - r.x) / r.w;
    const y = (clientY - box.top - r.y) / r.h;
    if (this.#mirrored()) x = 1 - x;
    if (!clamp && (x < 0 || x > 1 || y < 0 || y > 1)) return null;
    return [round4(clamp01(x)), round4(clamp01(y))];
  }

  /** Redraws on the next animation frame. */
  render() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#draw();
    });
  }

  #draw() {
    const c = this.canvas;
    const v = this.video;
    if (!c || !c.isConnected) return;
    if (this.#follow && v) {
      // Moved over the video with the CSSOM (allowed by the CSP, unlike style attributes).
      c.style.left = `${v.offsetLeft}px`;
      c.style.top = `${v.offsetTop}px`;
      c.style.width = `${v.offsetWidth}px`;
      c.style.height = `${v.offsetHeight}px`;
      c.hidden = v.hidden || !v.offsetWidth;
    }
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const r = this.frameRect();
    ctx.save();
    ctx.beginPath();
    ctx.rect(Math.max(0, r.x), Math.max(0, r.y), Math.min(w, r.w), Math.min(h, r.h));
    ctx.clip();
    const mirror = this.#mirrored();
    const at = (p) => [r.x + (mirror ? 1 - p[0] : p[0]) * r.w, r.y + p[1] * r.h];
    for (const s of [...this.#strokes, ...this.#pending.values()]) drawStroke(ctx, s, at, r);
    if (this.#pointer) {
      const [x, y] = at([this.#pointer.x, this.#pointer.y]);
      ctx.beginPath();
      ctx.arc(x, y, 9, 0, Math.PI * 2);
      ctx.fillStyle = 'rgba(255, 61, 0, 0.85)';
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = '#ffffff';
      ctx.stroke();
    }
    ctx.restore();
  }
}

function drawStroke(ctx, s, at, r) {
  const pts = (s.points ?? []).map(at);
  if (pts.length === 0) return;
  const lw = Math.max(1, (Number(s.width) || 0.005) * r.w);
  ctx.strokeStyle = s.color;
  ctx.fillStyle = s.color;
  ctx.lineWidth = lw;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  switch (s.tool) {
    case 'arrow': {
      const [a, b] = [pts[0], pts[pts.length - 1]];
      ctx.beginPath();
      ctx.moveTo(a[0], a[1]);
      ctx.lineTo(b[0], b[1]);
      ctx.stroke();
      const angle = Math.atan2(b[1] - a[1], b[0] - a[0]);
      const head = Math.max(10, lw * 4);
      ctx.beginPath();
      ctx.moveTo(b[0], b[1]);
      ctx.lineTo(b[0] - head * Math.cos(angle - Math.PI / 7), b[1] - head * Math.sin(angle - Math.PI / 7));
      ctx.lineTo(b[0] - head * Math.cos(angle + Math.PI / 7), b[1] - head * Math.sin(angle + Math.PI / 7));
      ctx.closePath();
      ctx.fill();
      break;
    }
    case 'circle': {
      const [a, b] = [pts[0], pts[pts.length - 1]];
      ctx.beginPath();
      ctx.ellipse((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, Math.abs(b[0] - a[0]) / 2 || 1, Math.abs(b[1] - a[1]) / 2 || 1, 0, 0, Math.PI * 2);
      ctx.stroke();
      break;
    }
    case 'text': {
      const size = Math.max(12, r.w * 0.04);
      ctx.font = `600 ${size}px system-ui, sans-serif`;
      ctx.textBaseline = 'top';
      ctx.lineWidth = 3;
      ctx.strokeStyle = 'rgba(0, 0, 0, 0.6)';
      ctx.strokeText(String(s.text ?? ''), pts[0][0], pts[0][1]);
      ctx.fillText(String(s.text ?? ''), pts[0][0], pts[0][1]);
      break;
    }
    default: {
      ctx.beginPath();
      ctx.moveTo(pts[0][0], pts[0][1]);
      if (pts.length === 1) ctx.lineTo(pts[0][0] + 0.01, pts[0][1]);
      for (const p of pts.slice(1)) ctx.lineTo(p[0], p[1]);
      ctx.stroke();
    }
  }
}

/**
 * A snapshot with its marks burnt in, at the picture's own size, as a PNG
 * (the snapshot is served by Assist itself, so the canvas is not tainted).
 * @param {HTMLImageElement} img  a loaded image
 * @param {object[]} strokes  as AnnotationLayer.strokes() returns them
 * @returns {Promise<Blob>}
 */
export async function annotatedImage(img, strokes) {
  const [w, h] = mediaSize(img);
  if (!w || !h) throw new Error('the photo has not loaded');
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0, w, h);
  const r = { x: 0, y: 0, w, h };
  for (const s of strokes) drawStroke(ctx, s, (p) => [p[0] * w, p[1] * h], r);
  const blob = await new Promise((resolve) => { canvas.toBlob(resolve, 'image/png'); });
  if (!blob) throw new Error('the picture could not be encoded');
  return blob;
}

/** "snapshot:<id>" → "<id>", anything else → "". */
export function snapshotIdOf(target) {
  return typeof target === 'string' && target.startsWith('snapshot:') ? target.slice('snapshot:'.length) : '';
}

/**
 * The marks of every snapshot of the session, one AnnotationLayer per
 * snapshot, kept whether or not the snapshot is on screen (so a history
 * replay or a later view shows them all).
 */
export class SnapshotAnnotations {
  #layers = new Map(); // snapshot id → AnnotationLayer

  /** The layer of a snapshot, created on first use. */
  layer(id) {
    let l = this.#layers.get(id);
    if (!l) {
      l = new AnnotationLayer();
      this.#layers.set(id, l);
    }
    return l;
  }

  /** Applies an `annotation` payload whose target is a snapshot; false for other targets. */
  apply(payload) {
    const id = snapshotIdOf(payload?.target);
    if (!id) return false;
    this.layer(id).apply(payload);
    return true;
  }

  /** Applies a `pointer` payload whose target is a snapshot; false for other targets. */
  pointer(payload) {
    const id = snapshotIdOf(payload?.target);
    if (!id) return false;
    this.layer(id).pointer(payload);
    return true;
  }

  /** The strokes on a snapshot. */
  strokes(id) {
    return this.#layers.get(id)?.strokes() ?? [];
  }

  /** Forgets every mark (before a history replay). */
  reset() {
    for (const l of this.#layers.values()) l.reset();
  }
}

const MAX_POINTS = 500;

/**
 * The specialist's drawing tools on an AnnotationLayer: pointer input on the
 * canvas becomes strokes (sent as `annotation`) and throttled `pointer` moves.
 */
export class AnnotationEditor {
  layer;
  tool = 'freehand';
  color = '#ff3d00';
  width = 0.006;
  text = '';
  #send;
  #target;
  #drawing = null; // the stroke being drawn
  #lastPointer = 0;
  #pointerQueued = null;
  #pointerTimer = 0;
  #abort = null;

  /**
   * @param {AnnotationLayer} layer
   * @param {(type: string, payload: object) => boolean} send
   * @param {() => string} target  "video:<participant id>" or ''
   */
  constructor(layer, send, target) {
    this.layer = layer;
    this.#send = send;
    this.#target = target;
  }

  /** Listens to pointer input on the layer's current canvas. */
  attach() {
    this.#abort?.abort();
    this.#abort = new AbortController();
    const c = this.layer.canvas;
    if (!c) return;
    const opts = { signal: this.#abort.signal };
    c.addEventListener('pointerdown', (ev) => this.#down(ev), opts);
    c.addEventListener('pointermove', (ev) => this.#move(ev), opts);
    c.addEventListener('pointerup', (ev) => this.#up(ev), opts);
    c.addEventListener('pointercancel', () => this.#cancel(), opts);
    c.addEventListener('pointerleave', () => this.#pointerOut(), opts);
  }

  detach() {
    this.#abort?.abort();
    this.#abort = null;
    this.#cancel();
  }

  undo() {
    const target = this.#target();
    return !!target && this.#send('annotation', { target, action: 'undo' });
  }

  clear() {
    const target = this.#target();
    return !!target && this.#send('annotation', { target, action: 'clear' });
  }

  /** Sends a finished stroke (the echo from the server confirms it). */
  sendStroke(stroke) {
    const target = this.#target();
    if (!target) return false;
    this.layer.setPending(stroke);
    const ok = this.#send('annotation', { target, action: 'stroke', stroke });
    if (!ok) this.layer.dropPending(stroke.id);
    return ok;
  }

  #down(ev) {
    if (ev.button !== undefined && ev.button !== 0) return;
    const p = this.layer.toFrame(ev.clientX, ev.clientY);
    if (!p || !this.#target()) return;
    ev.preventDefault();
    try {
      this.layer.canvas.setPointerCapture(ev.pointerId);
    } catch {
      // synthetic or already released pointers cannot be captured
    }
    const base = { id: newStrokeId(), tool: this.tool, color: this.color, width: this.width };
    if (this.tool === 'text') {
      const text = this.text.trim().slice(0, 200);
      if (text) this.sendStroke({ ...base, points: [p], text });
      return;
    }
    this.#drawing = { ...base, points: [p, p].slice(0, this.tool === 'freehand' ? 1 : 2) };
    this.layer.setPending(this.#drawing);
  }

  #move(ev) {
    this.#queuePointer(ev);
    const s = this.#drawing;
    if (!s) return;
    const p = this.layer.toFrame(ev.clientX, ev.clientY, { clamp: true });
    if (!p) return;
    if (s.tool === 'freehand') {
      const last = s.points[s.points.length - 1];
      if (Math.abs(last[0] - p[0]) + Math.abs(last[1] - p[1]) < 0.002 || s.points.length >= MAX_POINTS) return;
      s.points.push(p);
    } else {
      s.points[1] = p;
    }
    this.layer.setPending(s);
  }

  #up(ev) {
    const s = this.#drawing;
    this.#drawing = null;
    if (!s) return;
    const p = this.layer.toFrame(ev.clientX, ev.clientY, { clamp: true });
    if (p && s.tool !== 'freehand') s.points[1] = p;
    else if (p && s.points.length < MAX_POINTS) {
      const last = s.points[s.points.length - 1];
      if (last[0] !== p[0] || last[1] !== p[1]) s.points.push(p);
    }
    this.sendStroke(s);
  }

  #cancel() {
    if (this.#drawing) this.layer.dropPending(this.#drawing.id);
    this.#drawing = null;
  }

  #queuePointer(ev) {
    const p = this.layer.toFrame(ev.clientX, ev.clientY);
    if (!p) {
      this.#pointerOut();
      return;
    }
    this.#pointerQueued = { x: p[0], y: p[1], visible: true };
    const wait = this.#lastPointer + POINTER_INTERVAL_MS - Date.now();
    if (wait <= 0) this.#flushPointer();
    else if (!this.#pointerTimer) this.#pointerTimer = setTimeout(() => this.#flushPointer(), wait);
  }

  #flushPointer() {
    clearTimeout(this.#pointerTimer);
    this.#pointerTimer = 0;
    const p = this.#pointerQueued;
    this.#pointerQueued = null;
    const target = this.#target();
    if (!p || !target) return;
    this.#lastPointer = Date.now();
    this.#send('pointer', { target, ...p });
  }

  #pointerOut() {
    if (!this.#pointerQueued && this.#lastPointer === 0) return;
    clearTimeout(this.#pointerTimer);
    this.#pointerTimer = 0;
    this.#pointerQueued = null;
    const target = this.#target();
    if (target && this.#lastPointer) this.#send('pointer', { target, x: 0, y: 0, visible: false });
    this.#lastPointer = 0;
  }
}

// ------------------------------------------------------------ screen sharing

/**
 * Shares the screen as an extra video track on the call (renegotiated by the
 * call's perfect negotiation) and tells the others with `screen_share`.
 * The browser's own "Stop sharing" ends the track and so the share.
 * Event: `change` {active}.
 */
export class ScreenShare extends EventTarget {
  #session;
  #track = null;
  #sender = null;
  #call = null;

  /** @param {() => import('./session.js').Session|null} getSession */
  constructor(getSession) {
    super();
    this.#session = getSession;
  }

  static get supported() {
    return typeof navigator.mediaDevices?.getDisplayMedia === 'function';
  }

  get active() {
    return this.#track !== null;
  }

  async start() {
    if (this.#track) return;
    const session = this.#session();
    if (!session?.call) throw new Error('the call has not started yet');
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = stream.getVideoTracks()[0];
    const call = session.call;
    if (!track || !call?.pc) {
      for (const t of stream.getTracks()) t.stop();
      throw new Error('the call ended');
    }
    track.contentHint = 'detail';
    this.#track = track;
    this.#call = call;
    this.#sender = call.addTrack(track, stream);
    track.addEventListener('ended', () => this.stop());
    session.send('screen_share', { active: true, track_id: track.id });
    this.#emit();
  }

  stop() {
    const track = this.#track;
    if (!track) return;
    this.#track = null;
    track.stop();
    const session = this.#session();
    if (this.#call && session?.call === this.#call) {
      this.#call.removeTrack(this.#sender);
      session.send('screen_share', { active: false, track_id: track.id });
    }
    this.#call = null;
    this.#sender = null;
    this.#emit();
  }

  #emit() {
    this.dispatchEvent(new CustomEvent('change', { detail: { active: this.active } }));
  }
}
