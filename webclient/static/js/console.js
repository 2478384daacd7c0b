// The specialist console. On /console/: sign in, list and create sessions,
// open one (#session={id}). On /s/{jwt}: straight into that session with the
// link token. In a session: camera and call, the live waiting room with
// Admit/Deny, the roster, Leave and End.

import { summaryLine } from './diagnostics.js';
import { loadSSOSettings, signInFromFragment } from './idp.js';
import { Invitations, handoverText } from './invite.js';
import { LocalMedia } from './media.js';
import { Session } from './session.js';
import { CaptionsStrip, readerLanguage } from './captions.js';
import { EmergencyConsole } from './emergency.js';
import { Inbox } from './inbox.js';
import { StaffConsole } from './team.js';
import { startStats } from './stats.js';
import { AnalyticsPage } from './analytics.js';
import { loadSeats, loadToday } from './appointments.js';
import {
  AnnotationEditor, AnnotationLayer, ScreenShare, SnapshotAnnotations, Timeline, annotatedImage, bindChatForm, formatBytes,
  formatTime, safeURL, senderName, snapshotIdOf, uploadFile,
} from './tools.js';
import {
  $, VideoGrid, clearNotices, el, formatDateTime, installDebug, notify, setState, setStatus, setToggle, showView, waitedFor,
} from './ui.js';

const STORAGE_KEY = 'assist.console';
// Video messages (inbox.js) and emergencies (emergency.js); set up by init.
let inbox = null;
let emergency = null;
const TITLE = document.title;

/** A failed API call; `status` 0 means the network failed. */
class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `request failed (${status})`);
    this.status = status;
    this.title = title;
  }
}

// ---------------------------------------------------------------- sign-in

function credentials() {
  try {
    const c = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    if (!c || typeof c.token !== 'string') return null;
    if (c.expires_at && Date.parse(c.expires_at) <= Date.now()) {
      sessionStorage.removeItem(STORAGE_KEY);
      return null;
    }
    return c;
  } catch {
    return null;
  }
}

function signOut(message = '') {
  sessionStorage.removeItem(STORAGE_KEY);
  leaveCurrent();
  if (window.location.hash) history.replaceState(null, '', window.location.pathname);
  route();
  if (message) showLoginError(message);
}

function showLoginError(message) {
  const box = $('login-error');
  box.textContent = message;
  box.hidden = !message;
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json, application/problem+json' };
  const c = credentials();
  if (c) headers.Authorization = `Bearer ${c.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'Network error', 'The server could not be reached. Check your connection.');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    throw new ApiError(res.status, data?.title ?? res.statusText, data?.detail ?? data?.title ?? '');
  }
  return data;
}

// A 401 means the console token expired or was revoked.
function apiFailed(err, what) {
  if (err instanceof ApiError && err.status === 401 && !linkToken()) {
    signOut('Your sign-in has expired. Please sign in again.');
    return;
  }
  notify(`${what}: ${err.message}`);
}

async function onLogin(event) {
  event.preventDefault();
  showLoginError('');
  const email = $('login-email').value.trim();
  const password = $('login-password').value;
  if (!email || !password) {
    showLoginError('Enter your email and password.');
    return;
  }
  const button = $('login-button');
  button.disabled = true;
  setStatus('Signing in…');
  try {
    const res = await api('POST', '/v1/auth/login', { email, password });
    if (!res || typeof res.token !== 'string') throw new ApiError(500, 'Bad reply', 'The server sent an unexpected reply.');
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ token: res.token, expires_at: res.expires_at ?? '' }));
    $('login-password').value = '';
    route();
  } catch (err) {
    showLoginError(err.status === 401 || err.status === 403
      ? 'The email or password is not correct.'
      : err.message);
    setStatus('Not signed in');
    $('login-password').focus();
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- sessions

let nextCursor = '';

const STATE_LABELS = { waiting: 'Waiting', active: 'Active', ended: 'Ended' };

function sessionItem(s) {
  const people = Array.isArray(s.participants) ? s.participants : [];
  const names = people.map((p) => p.name || (p.role === 'specialist' ? 'Specialist' : 'Customer'));
  const meta = [`Created ${formatDateTime(s.created_at)}`];
  if (s.ended_at) meta.push(`ended ${formatDateTime(s.ended_at)}`);
  meta.push(people.length === 1 ? '1 participant' : `${people.length} participants`);

  const actions = el('div', { class: 'session-actions' });
  if (s.customer_url && s.state !== 'ended') {
    actions.append(el('button', {
      type: 'button', class: 'button subtle', text: 'Copy customer link', 'data-testid': 'copy-session-link',
      on: { click: (ev) => copyText(s.customer_url, ev.currentTarget) },
    }));
  }
  actions.append(el('button', {
    type: 'button',
    class: 'button primary open-session-button',
    text: 'Open',
    disabled: s.state === 'ended',
    'aria-label': `Open session ${s.id}`,
    dataset: { sessionId: s.id, testid: 'open-session' },
    on: { click: () => openFromList(s.id) },
  }));

  return el('li', { class: 'session-item', dataset: { sessionId: s.id, state: s.state } },
    el('div', { class: 'session-main' },
      el('span', { class: `badge state-${s.state}`, text: STATE_LABELS[s.state] ?? s.state }),
      el('span', { class: 'session-id', text: s.id }),
      el('span', { class: 'session-meta', text: meta.join(' · ') }),
      names.length ? el('span', { class: 'session-people', text: names.join(', ') }) : null),
    actions);
}

async function loadSessions({ more = false } = {}) {
  const list = $('session-list');
  setStatus('Loading sessions…');
  try {
    const query = more && nextCursor ? `?cursor=${encodeURIComponent(nextCursor)}` : '';
    const res = await api('GET', `/v1/sessions${query}`);
    const data = Array.isArray(res?.data) ? res.data : [];
    if (!more) list.replaceChildren();
    for (const s of data) list.append(sessionItem(s));
    nextCursor = res?.has_more && res.next_cursor ? res.next_cursor : '';
    $('load-more-button').hidden = !nextCursor;
    $('sessions-empty').hidden = list.children.length > 0;
    setStatus(list.children.length === 1 ? '1 session' : `${list.children.length} sessions`);
  } catch (err) {
    setStatus('Could not load the sessions');
    apiFailed(err, 'Loading the sessions failed');
  }
}

let createdSessionId = '';

async function createSession() {
  const button = $('new-session-button');
  button.disabled = true;
  setStatus('Creating a session…');
  try {
    const s = await api('POST', '/v1/sessions', {});
    createdSessionId = s.id;
    $('customer-link').value = s.customer_url ?? '';
    $('specialist-link').value = s.specialist_url ?? '';
    $('specialist-link-row').hidden = !s.specialist_url;
    $('new-session-panel').hidden = false;
    $('new-session-title').focus();
    setStatus('Session created');
    const list = $('session-list');
    list.prepend(sessionItem(s));
    $('sessions-empty').hidden = true;
  } catch (err) {
    setStatus('Could not create a session');
    apiFailed(err, 'Creating the session failed');
  } finally {
    button.disabled = false;
  }
}

async function copyText(text, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    // Clipboard API unavailable (insecure context, no permission).
  }
  if (!ok) {
    const input = el('input', { type: 'text', value: text, class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
    document.body.append(input);
    input.select();
    ok = document.execCommand('copy');
    input.remove();
  }
  if (button) {
    const label = button.textContent;
    button.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { button.textContent = label; }, 2000);
  }
  setStatus(ok ? 'Link copied' : 'Select the link and copy it');
}

function openFromList(id) {
  window.location.hash = `session=${encodeURIComponent(id)}`;
}

// ---------------------------------------------------------------- in a session

let current = null; // {session, media, grid, join, viaLink}
let roster = [];
let queue = [];
// The latest setup test result of each customer (`diagnostics`), by participant id.
const diagnostics = new Map();
let queueTimer = 0;
let denyTarget = '';

function linkToken() {
  const m = /^\/s\/([^/]+)\/?$/.exec(window.location.pathname);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return '';
  }
}

function hashSessionId() {
  const m = /^#session=(.+)$/.exec(window.location.hash);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return '';
  }
}

function leaveCurrent() {
  if (!current) return;
  screenShare.stop();
  const { session, media, grid } = current;
  current = null;
  session.leave();
  media.stop();
  grid.clear();
  clearInterval(queueTimer);
  document.title = TITLE;
}

// ---------------------------------------------------------------- tools

const timeline = new Timeline($('chat-list'), () => current?.session.participantId ?? null);
const captions = new CaptionsStrip({ strip: $('captions-strip'), toggle: $('captions-button') });
const annotations = new AnnotationLayer();
const editor = new AnnotationEditor(annotations,
  (type, payload) => !!current?.session.send(type, payload),
  () => (annotatedId ? `video:${annotatedId}` : ''));
const screenShare = new ScreenShare(() => current?.session ?? null);
let annotatedId = ''; // the customer whose video carries the annotation canvas
let cameraCaps = null;

// Snapshots are marked up in a viewer over the stage, with the same tools; the
// marks of every snapshot are kept (history replays them) whether shown or not.
const snapshotMarks = new SnapshotAnnotations();
const snapshots = new Map(); // snapshot id → snapshot info from snapshot_taken
let shownSnapshot = ''; // the snapshot in the viewer, '' when closed
const snapshotEditor = new AnnotationEditor(new AnnotationLayer(), // replaced by the shown snapshot's layer
  (type, payload) => !!current?.session.send(type, payload),
  () => (shownSnapshot ? `snapshot:${shownSnapshot}` : ''));
const editors = [editor, snapshotEditor];

/** The editor the tools act on: the open snapshot's, else the live video's. */
function activeEditor() {
  return shownSnapshot ? snapshotEditor : editor;
}

function resetTools() {
  timeline.clear();
  captions.reset();
  annotations.reset();
  closeSnapshot();
  snapshotMarks.reset();
  snapshots.clear();
  cameraCaps = null;
  renderCameraControls();
  renderRecording({ active: false });
  renderStorage(0);
  $('gallery').replaceChildren();
  $('location-result').hidden = true;
  $('location-result').replaceChildren();
  screenShare.stop();
}

/** The customer in the call whose video we annotate. */
function annotatedCustomer() {
  return roster.find((p) => p.role === 'customer' && p.state === 'in_call') ?? null;
}

// Puts the annotation canvas over the customer's video tile, when there is one.
function attachAnnotations() {
  const customer = annotatedCustomer();
  let tile = null;
  if (customer) {
    for (const t of document.querySelectorAll('#remote-videos .tile')) {
      if (t.dataset.streamId === customer.participant_id || t.dataset.streamId.includes(customer.participant_id)) tile = t;
    }
  }
  if (annotatedId && customer?.participant_id !== annotatedId) annotations.reset();
  annotatedId = tile ? customer.participant_id : '';
  if (!tile) {
    editor.detach();
    annotations.bind(null, null);
    return;
  }
  let canvas = tile.querySelector('canvas.annotation-layer');
  if (!canvas) {
    canvas = el('canvas', { class: 'annotation-layer', 'aria-label': 'Draw on the customer\'s video', 'data-testid': 'annotation-canvas' });
    tile.querySelector('.tile-video').after(canvas);
  }
  if (annotations.canvas !== canvas) {
    annotations.bind(canvas, tile.querySelector('.tile-video'));
    editor.attach();
  }
}

function onToolMessage(type, payload, live) {
  switch (type) {
    case 'history':
      annotations.reset();
      snapshotMarks.reset();
      for (const e of Array.isArray(payload.entries) ? payload.entries : []) {
        if (e && typeof e.type === 'string') onToolMessage(e.type, e.payload ?? {}, false);
      }
      break;
    case 'chat':
      timeline.chat(payload);
      break;
    case 'file_shared':
      timeline.file(payload);
      break;
    case 'annotation':
      if (snapshotMarks.apply(payload)) markGalleryItem(snapshotIdOf(payload.target));
      else if (!annotatedId || payload.target === `video:${annotatedId}`) annotations.apply(payload);
      break;
    case 'snapshot_request':
      timeline.event(payload, 'Photo requested.');
      break;
    case 'snapshot_taken':
      addSnapshot(payload);
      timeline.event(payload, 'Photo taken.');
      break;
    case 'geolocation_request':
      timeline.event(payload, 'Location requested.');
      break;
    case 'geolocation':
      showLocation(payload);
      emergency.location(payload);
      break;
    case 'emergency':
      emergency.flag(payload);
      timeline.event(payload, payload.active ? 'Emergency flagged.' : 'Emergency ended.');
      break;
    case 'handover':
      timeline.event(payload, handoverText(payload));
      break;
    case 'camera_capabilities':
      cameraCaps = payload;
      renderCameraControls();
      break;
    case 'camera_control_result':
      $('camera-status').textContent = payload.applied
        ? `${payload.command}: done`
        : `${payload.command}: not done${payload.reason ? ` (${payload.reason})` : ''}`;
      if (live && !payload.applied) notify(`The camera did not ${payload.command}: ${payload.reason || 'refused'}`, { kind: 'warning' });
      break;
    case 'recording':
      renderRecording(payload);
      timeline.event(payload, payload.active ? 'Recording started.'
        : payload.starting ? 'Recording starting…' : 'Recording stopped.');
      break;
    case 'storage':
      renderStorage(Number(payload.uploads_behind));
      break;
    case 'diagnostics': {
      const id = payload.from?.participant_id;
      if (id) {
        diagnostics.set(id, payload);
        renderQueue();
        renderRoster();
      }
      timeline.event(payload, `Setup test: ${summaryLine(payload)}`);
      break;
    }
    case 'screen_share':
      if (payload.from?.participant_id !== current?.session.participantId) {
        timeline.event(payload, payload.active ? 'Started sharing their screen.' : 'Stopped sharing their screen.');
      }
      break;
    default:
      break;
  }
}

// renderRecording shows the recording indicator (or that a recording is about
// to start) and sets the Record button to match.
function renderRecording({ active = false, starting = false }) {
  const on = !!active;
  const soon = !on && !!starting;
  recording = on;
  $('recording-indicator').hidden = !on;
  $('recording-starting').hidden = !soon;
  setToggle($('record-button'), on || soon, on ? 'Stop recording' : soon ? 'Recording starting…' : 'Record');
  $('record-button').disabled = soon; // a second start would be refused
}

let recording = false;

// renderStorage shows how many recording segments wait for object storage.
function renderStorage(n) {
  const behind = Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
  const box = $('storage-status');
  box.hidden = behind === 0;
  box.dataset.behind = String(behind);
  box.textContent = behind === 1
    ? 'Uploads behind: 1 segment waiting for storage'
    : `Uploads behind: ${behind} segments waiting for storage`;
}

function addSnapshot(msg) {
  const snap = msg.snapshot ?? {};
  const gallery = $('gallery');
  if (!snap.id) return;
  snapshots.set(snap.id, snap); // a replayed entry brings a freshly signed URL
  if (gallery.querySelector(`[data-snapshot-id="${CSS.escape(snap.id)}"]`)) return;
  const url = safeURL(snap.url);
  const caption = [formatTime(snap.taken_at), `${snap.width}×${snap.height}`, formatBytes(snap.size)].filter(Boolean).join(' · ');
  gallery.prepend(el('li', { class: 'gallery-item', dataset: { snapshotId: snap.id } },
    el('figure', { class: 'gallery-figure' },
      el('button', {
        type: 'button', class: 'gallery-open', 'aria-label': `Open the photo taken ${formatTime(snap.taken_at)} to mark it up`,
        dataset: { testid: 'open-snapshot', snapshotId: snap.id }, on: { click: () => openSnapshot(snap.id) },
      }, el('img', { src: url, alt: `Photo taken ${formatTime(snap.taken_at)}`, loading: 'lazy', 'data-testid': 'snapshot' })),
      el('figcaption', { text: caption }))));
  markGalleryItem(snap.id);
}

// markGalleryItem outlines the gallery photos that carry marks.
function markGalleryItem(id) {
  const item = id && $('gallery').querySelector(`[data-snapshot-id="${CSS.escape(id)}"]`);
  if (item) item.classList.toggle('marked', snapshotMarks.strokes(id).length > 0);
}

/** Shows a snapshot in the viewer over the stage; the drawing tools then mark it up. */
function openSnapshot(id) {
  const snap = snapshots.get(id);
  if (!snap) return;
  const img = $('snapshot-image');
  const url = safeURL(snap.url);
  if (shownSnapshot !== id) {
    snapshotEditor.detach();
    snapshotEditor.layer.bind(null, null);
  }
  shownSnapshot = id;
  if (img.getAttribute('src') !== url) img.src = url;
  $('snapshot-download').href = url;
  $('snapshot-download').download = `photo-${id}.${snap.content_type === 'image/png' ? 'png' : 'jpg'}`;
  $('snapshot-viewer-title').textContent = `Photo taken ${formatTime(snap.taken_at)}`;
  $('snapshot-viewer').hidden = false;
  $('snapshot-viewer').dataset.snapshotId = id;
  const layer = snapshotMarks.layer(id);
  snapshotEditor.layer = layer;
  layer.bind($('snapshot-annotations'), img);
  snapshotEditor.attach();
  $('annotation-title').textContent = 'Draw on the photo';
}

function closeSnapshot() {
  if (!shownSnapshot) return;
  snapshotEditor.detach();
  snapshotEditor.layer.bind(null, null);
  shownSnapshot = '';
  $('snapshot-viewer').hidden = true;
  delete $('snapshot-viewer').dataset.snapshotId;
  $('annotation-title').textContent = 'Draw on the customer\'s video';
}

async function downloadMarkedSnapshot() {
  const id = shownSnapshot;
  const img = $('snapshot-image');
  if (!id) return;
  try {
    if (!img.complete || !img.naturalWidth) throw new Error('the photo has not loaded yet');
    const blob = await annotatedImage(img, snapshotMarks.strokes(id));
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: `photo-${id}-marked.png`, class: 'offscreen' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    notify(`The photo could not be saved: ${err.message}`);
  }
}

function showLocation(msg) {
  const box = $('location-result');
  box.hidden = false;
  const who = senderName(msg.from, current?.session.participantId);
  if (msg.declined) {
    box.replaceChildren(`Location declined by ${who}${msg.reason ? `: ${msg.reason}` : '.'}`);
    box.dataset.declined = 'true';
    timeline.event(msg, 'Location declined.');
    return;
  }
  const lat = Number(msg.latitude);
  const lon = Number(msg.longitude);
  const map = `https://www.openstreetmap.org/?mlat=${lat.toFixed(6)}&mlon=${lon.toFixed(6)}#map=17/${lat.toFixed(6)}/${lon.toFixed(6)}`;
  box.dataset.declined = 'false';
  box.replaceChildren(
    `Location of ${who}: ${lat.toFixed(5)}, ${lon.toFixed(5)} (±${Math.round(Number(msg.accuracy) || 0)} m) `,
    el('a', { href: map, target: '_blank', rel: 'noopener noreferrer', text: 'Open map', 'data-testid': 'location-map' }),
  );
  timeline.event(msg, 'Location shared.');
}

function renderCameraControls() {
  const caps = cameraCaps;
  const box = $('camera-controls');
  box.hidden = !caps;
  box.dataset.received = String(!!caps);
  $('flip-button').hidden = !caps?.can_flip;
  $('torch-button').hidden = !caps?.torch;
  $('zoom-row').hidden = !caps?.zoom;
  if (caps?.zoom) {
    const zoom = $('zoom-input');
    zoom.min = String(caps.zoom_min ?? 1);
    zoom.max = String(caps.zoom_max ?? 1);
    zoom.step = String(caps.zoom_step || 0.1);
    zoom.value = String(caps.zoom_value ?? caps.zoom_min ?? 1);
  }
  if (!caps) $('camera-status').textContent = '';
  else if (!caps.can_flip && !caps.torch && !caps.zoom) $('camera-status').textContent = 'This camera cannot be controlled remotely.';
}

function cameraControl(command, value) {
  const payload = { command };
  if (value !== undefined) payload.value = value;
  if (!current?.session.send('camera_control', payload)) notify('Not connected; try again in a moment.');
  else $('camera-status').textContent = `${command}: sent…`;
}

async function sendFile() {
  const input = $('file-input');
  const file = input.files?.[0];
  input.value = '';
  const session = current?.session;
  if (!file || !session?.sessionId) return;
  const button = $('send-file-button');
  button.disabled = true;
  try {
    await uploadFile(session.sessionId, current.join.token, file);
  } catch (err) {
    notify(`The file could not be sent: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

function selectTool(tool) {
  for (const e of editors) e.tool = tool;
  for (const b of document.querySelectorAll('.tool-button')) b.setAttribute('aria-pressed', String(b.dataset.tool === tool));
  $('annotation-text-row').hidden = tool !== 'text';
  if (tool === 'text') $('annotation-text').focus();
}

function openSession(join, viaLink) {
  leaveCurrent();
  roster = [];
  queue = [];
  diagnostics.clear();
  resetTools();
  renderQueue();
  renderRoster();
  emergency.reset();
  $('session-info').textContent = '';
  $('remote-placeholder').hidden = false;

  const media = new LocalMedia();
  const session = new Session({ join: { ...join, language: readerLanguage() }, media });
  const grid = new VideoGrid($('remote-videos'), (stream) => {
    const p = roster.find((x) => x.participant_id && (stream.id === x.participant_id || stream.id.includes(x.participant_id)));
    return p ? (p.name || (p.role === 'customer' ? 'Customer' : 'Specialist')) : '';
  });
  const entry = { session, media, grid, join, viaLink };
  current = entry;
  const mine = (fn) => (ev) => { if (current === entry) fn(ev.detail); };

  media.addEventListener('change', mine(() => attachLocal(media)));
  session.addEventListener('state', mine(onSessionState));
  session.addEventListener('welcome', mine((w) => {
    $('session-info').textContent = `Session ${w.session_id}`;
  }));
  session.addEventListener('queue', mine(({ waiting }) => {
    const before = new Set(queue.map((q) => q.participant_id));
    queue = waiting;
    renderQueue();
    const arrived = waiting.filter((q) => !before.has(q.participant_id));
    if (arrived.length === 1) setStatus(`${arrived[0].name || 'A customer'} is waiting`);
    else if (arrived.length > 1) setStatus(`${arrived.length} customers are waiting`);
  }));
  session.addEventListener('participants', mine(({ participants }) => {
    roster = participants;
    renderRoster();
    grid.relabel();
    attachAnnotations();
  }));
  session.addEventListener('stream', mine(({ stream }) => {
    grid.add(stream);
    $('remote-placeholder').hidden = grid.size > 0;
    attachAnnotations();
  }));
  session.addEventListener('streamremoved', mine(({ stream }) => {
    grid.remove(stream);
    $('remote-placeholder').hidden = grid.size > 0;
    attachAnnotations();
  }));
  session.addEventListener('notice', mine(({ message }) => notify(message)));
  session.addEventListener('message', mine(({ type, payload }) => captions.handle(type, payload ?? {}) || onToolMessage(type, payload ?? {}, true)));

  clearInterval(queueTimer);
  queueTimer = setInterval(refreshWaitTimes, 15000);
  showView('call-view');
  session.start();
  startStats(session);
}

function attachLocal(media) {
  const video = $('self-view');
  if (video.srcObject !== media.stream) video.srcObject = media.stream;
  video.hidden = !media.hasVideo;
  setToggle($('mic-button'), !media.audioEnabled, media.audioEnabled ? 'Mute' : 'Unmute');
  setToggle($('camera-button'), !media.videoEnabled, media.videoEnabled ? 'Camera off' : 'Camera on');
  $('mic-button').disabled = !media.hasAudio;
  $('camera-button').disabled = !media.hasVideo;
}

function onSessionState({ state, reason, message, code }) {
  setState(state);
  const viaLink = current?.viaLink ?? !!linkToken();
  switch (state) {
    case 'connecting':
      setStatus('Connecting…');
      break;
    case 'reconnecting':
      setStatus('Connection lost, reconnecting…');
      break;
    case 'in-call':
      setStatus('In session');
      break;
    case 'ended':
      if (reason === 'left' && !viaLink) {
        // Leaving from the console goes back to the list.
        finishCurrent();
        if (window.location.hash) history.pushState(null, '', window.location.pathname);
        route();
        return;
      }
      finishCurrent();
      showEnd(reason === 'left' ? 'You left the session' : 'The session has ended',
        reason === 'left' ? 'The session goes on without you.' : (reason && reason !== 'ended' ? reason : ''),
        { rejoin: reason === 'left', back: !viaLink });
      break;
    case 'error':
      finishCurrent();
      if (!viaLink && code === 'unauthorized') {
        signOut('Your sign-in has expired. Please sign in again.');
        return;
      }
      showEnd('Unable to open the session', message ?? '', { rejoin: true, back: !viaLink });
      break;
    default:
      break;
  }
}

function finishCurrent() {
  if (!current) return;
  screenShare.stop();
  current.media.stop();
  current.grid.clear();
  current = null;
  clearInterval(queueTimer);
  document.title = TITLE;
}

function showEnd(title, message, { rejoin = false, back = false } = {}) {
  clearNotices();
  setStatus(title);
  $('end-title').textContent = title;
  $('end-message').textContent = message;
  $('rejoin-button').hidden = !rejoin;
  $('back-button').hidden = !back;
  showView('end-view');
  $('end-title').focus();
}

function renderQueue() {
  const list = $('queue-list');
  list.replaceChildren(...queue.map((q) => {
    const name = q.name || 'Customer';
    return el('li', { class: 'person', dataset: { participantId: q.participant_id } },
      el('div', { class: 'person-main' },
        el('span', { class: 'person-name', text: name }),
        el('span', { class: 'person-meta' },
          'Waiting ',
          el('time', { datetime: q.since ?? '', class: 'waited', text: waitedFor(q.since) })),
        diagnosticsLine(q.participant_id)),
      el('div', { class: 'person-actions' },
        el('button', {
          type: 'button', class: 'button primary admit-button', text: 'Admit', 'aria-label': `Admit ${name}`,
          dataset: { participantId: q.participant_id, testid: 'admit' },
          on: { click: (ev) => admit(q.participant_id, ev.currentTarget) },
        }),
        el('button', {
          type: 'button', class: 'button danger-outline deny-button', text: 'Deny', 'aria-label': `Turn away ${name}`,
          dataset: { participantId: q.participant_id, testid: 'deny' },
          on: { click: () => askDeny(q.participant_id, name) },
        })));
  }));
  $('queue-empty').hidden = queue.length > 0;
  $('queue-count').textContent = String(queue.length);
  document.title = queue.length > 0 ? `(${queue.length}) ${TITLE}` : TITLE;
}

function refreshWaitTimes() {
  for (const t of document.querySelectorAll('#queue-list time.waited')) {
    t.textContent = waitedFor(t.getAttribute('datetime'));
  }
}

function renderRoster() {
  const me = current?.session.participantId;
  $('roster-list').replaceChildren(...roster.map((p) => {
    const name = p.name || (p.role === 'customer' ? 'Customer' : 'Specialist');
    return el('li', { class: 'person', dataset: { participantId: p.participant_id, role: p.role, state: p.state } },
      el('div', { class: 'person-main' },
        el('span', { class: 'person-name', text: p.participant_id === me ? `${name} (you)` : name }),
        el('span', { class: 'person-meta', text: [p.role, p.state].filter(Boolean).join(' · ').replaceAll('_', ' ') }),
        diagnosticsLine(p.participant_id)));
  }));
}

/** The customer's setup test result in one line, or null before any. */
function diagnosticsLine(participantId) {
  const d = diagnostics.get(participantId);
  if (!d) return null;
  return el('span', {
    class: 'diag-line', text: `Setup: ${summaryLine(d)}`, title: (d.problems ?? []).join(', ').replaceAll('_', ' '),
    dataset: { testid: 'diagnostics', verdict: d.verdict, participantId },
  });
}

function admit(participantId, button) {
  if (!current?.session.admit(participantId)) {
    notify('Not connected; try again in a moment.');
    return;
  }
  button.disabled = true;
  button.textContent = 'Admitting…';
}

function askDeny(participantId, name) {
  denyTarget = participantId;
  $('deny-name').textContent = name;
  $('deny-reason').value = '';
  const dialog = $('deny-dialog');
  dialog.returnValue = ''; // Escape keeps the previous value otherwise
  dialog.showModal();
}

function onDenyClosed() {
  const dialog = $('deny-dialog');
  const target = denyTarget;
  denyTarget = '';
  if (dialog.returnValue !== 'deny' || !target || !current) return;
  if (!current.session.deny(target, $('deny-reason').value.trim())) notify('Not connected; try again in a moment.');
}

function onEndClosed() {
  if ($('end-dialog').returnValue !== 'end' || !current) return;
  if (current.session.end()) setStatus('Ending the session…');
  else notify('Not connected; the session could not be ended.');
}

// ---------------------------------------------------------------- routing

const analytics = new AnalyticsPage({ api });
let staffConsole = null;

function route() {
  const link = linkToken();
  staffConsole?.sync(); // team.js: presence, team chat and the live queue while signed in
  if (link) {
    $('sign-out-button').hidden = true;
    if (!current) openSession({ token: link }, true);
    return;
  }
  const c = credentials();
  $('sign-out-button').hidden = !c;
  if (!c) {
    leaveCurrent();
    setState('idle');
    setStatus('Not signed in');
    showView('login-view');
    $('login-email').focus();
    return;
  }
  const id = hashSessionId();
  if (id) {
    if (current?.join.session_id !== id) openSession({ token: c.token, session_id: id }, false);
    return;
  }
  if (window.location.hash === '#analytics') {
    leaveCurrent();
    setState('idle');
    showView('analytics-view');
    analytics.show();
    return;
  }
  leaveCurrent();
  setState('idle');
  showView('sessions-view');
  loadSessions();
  inbox.load();
  loadToday({ api, token: c.token, open: openFromList });
  loadSeats({ api }).then(({ auditor }) => { $('analytics-link').hidden = !auditor; });
  loadSSOSettings({ api });
}

function init() {
  // Colleagues, experts and hand-over (invite.js).
  new Invitations({
    api, token: () => (linkToken() ? '' : credentials()?.token ?? ''), sessionId: () => current?.join.session_id ?? null,
    leave: () => current?.session.leave(),
  });
  inbox = new Inbox({ api, failed: apiFailed });
  staffConsole = new StaffConsole({ token: () => (linkToken() ? '' : credentials()?.token ?? ''), open: openFromList });
  emergency = new EmergencyConsole({ send: (type, payload) => !!current?.session.send(type, payload) });
  installDebug(() => current?.session.call ?? null, {
    localStream: () => current?.media.stream ?? null,
    participantId: () => current?.session.participantId ?? null,
    annotations: () => annotations.strokes(),
    snapshotAnnotations: (id) => snapshotMarks.strokes(id),
    shownSnapshot: () => shownSnapshot,
    storageBehind: () => Number($('storage-status').dataset.behind || 0),
  });

  bindChatForm($('chat-form'), $('chat-input'), (text) => !!current?.session.send('chat', { text }), (m) => notify(m));
  $('record-button').addEventListener('click', () => {
    if (!current?.session.send('record', { active: !recording })) notify('Not connected; try again in a moment.');
  });
  $('snapshot-button').addEventListener('click', () => {
    if (!current?.session.send('snapshot_request', {})) notify('Not connected; try again in a moment.');
  });
  $('geolocation-button').addEventListener('click', () => {
    if (!current?.session.send('geolocation_request', {})) notify('Not connected; try again in a moment.');
  });
  $('send-file-button').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', sendFile);
  $('share-screen-button').hidden = !ScreenShare.supported;
  $('share-screen-button').addEventListener('click', async () => {
    try {
      if (screenShare.active) screenShare.stop();
      else await screenShare.start();
    } catch (err) {
      if (err.name !== 'NotAllowedError') notify(`The screen could not be shared: ${err.message}`);
    }
  });
  screenShare.addEventListener('change', ({ detail }) => {
    setToggle($('share-screen-button'), detail.active, detail.active ? 'Stop sharing' : 'Share screen');
  });
  $('flip-button').addEventListener('click', () => cameraControl('flip'));
  $('torch-button').addEventListener('click', () => {
    const on = $('torch-button').getAttribute('aria-pressed') !== 'true';
    $('torch-button').setAttribute('aria-pressed', String(on));
    cameraControl('torch', on ? 1 : 0);
  });
  $('zoom-input').addEventListener('change', () => cameraControl('zoom', Number($('zoom-input').value)));
  for (const b of document.querySelectorAll('.tool-button')) b.addEventListener('click', () => selectTool(b.dataset.tool));
  $('annotation-color').addEventListener('input', () => {
    for (const e of editors) e.color = $('annotation-color').value;
  });
  $('annotation-text').addEventListener('input', () => {
    for (const e of editors) e.text = $('annotation-text').value;
  });
  $('undo-button').addEventListener('click', () => activeEditor().undo());
  $('clear-button').addEventListener('click', () => activeEditor().clear());
  $('snapshot-close').addEventListener('click', closeSnapshot);
  $('snapshot-download-marked').addEventListener('click', downloadMarkedSnapshot);

  $('login-form').addEventListener('submit', onLogin);
  $('sign-out-button').addEventListener('click', () => signOut());
  $('refresh-button').addEventListener('click', () => loadSessions());
  $('load-more-button').addEventListener('click', () => loadSessions({ more: true }));
  $('new-session-button').addEventListener('click', createSession);
  $('open-new-session-button').addEventListener('click', () => {
    $('new-session-panel').hidden = true;
    if (createdSessionId) openFromList(createdSessionId);
  });
  $('close-new-session-button').addEventListener('click', () => { $('new-session-panel').hidden = true; });
  for (const button of document.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', () => copyText($(button.dataset.copy).value, button));
  }

  $('mic-button').addEventListener('click', () => current?.media.setAudioEnabled(!current.media.audioEnabled));
  $('camera-button').addEventListener('click', () => current?.media.setVideoEnabled(!current.media.videoEnabled));
  $('leave-button').addEventListener('click', () => current?.session.leave());
  $('end-button').addEventListener('click', () => {
    const dialog = $('end-dialog');
    dialog.returnValue = '';
    dialog.showModal();
  });
  $('end-dialog').addEventListener('close', onEndClosed);
  $('deny-dialog').addEventListener('close', onDenyClosed);
  $('rejoin-button').addEventListener('click', () => {
    if (linkToken()) window.location.reload();
    else route();
  });
  $('back-button').addEventListener('click', () => {
    history.pushState(null, '', window.location.pathname);
    route();
  });

  // A fragment navigation can fire both popstate and hashchange: route once.
  let routing = 0;
  const scheduleRoute = () => {
    clearTimeout(routing);
    routing = setTimeout(route, 0);
  };
  window.addEventListener('hashchange', scheduleRoute);
  window.addEventListener('popstate', scheduleRoute);
  // A reload or a closed tab is not hanging up: the others see "reconnecting" until the grace ends.
  window.addEventListener('pagehide', () => current?.session.disconnect());
  signInFromFragment(STORAGE_KEY).then((error) => {
    route();
    if (error) showLoginError(error);
  });
}

init();
