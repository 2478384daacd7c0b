// The specialist console. On /console/: sign in, list and create sessions,
// open one (#session={id}). On /s/{jwt}: straight into that session with the
// link token. In a session: camera and call, the live waiting room with
// Admit/Deny, the roster, Leave and End.

import { LocalMedia } from './media.js';
import { Session } from './session.js';
import {
  $, VideoGrid, clearNotices, el, formatDateTime, installDebug, notify, setState, setStatus, setToggle, showView, waitedFor,
} from './ui.js';

const STORAGE_KEY = 'assist.console';
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
  const { session, media, grid } = current;
  current = null;
  session.leave();
  media.stop();
  grid.clear();
  clearInterval(queueTimer);
  document.title = TITLE;
}

function openSession(join, viaLink) {
  leaveCurrent();
  roster = [];
  queue = [];
  renderQueue();
  renderRoster();
  $('session-info').textContent = '';
  $('remote-placeholder').hidden = false;

  const media = new LocalMedia();
  const session = new Session({ join, media });
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
  }));
  session.addEventListener('stream', mine(({ stream }) => {
    grid.add(stream);
    $('remote-placeholder').hidden = grid.size > 0;
  }));
  session.addEventListener('streamremoved', mine(({ stream }) => {
    grid.remove(stream);
    $('remote-placeholder').hidden = grid.size > 0;
  }));
  session.addEventListener('notice', mine(({ message }) => notify(message)));

  clearInterval(queueTimer);
  queueTimer = setInterval(refreshWaitTimes, 15000);
  showView('call-view');
  session.start();
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
          el('time', { datetime: q.since ?? '', class: 'waited', text: waitedFor(q.since) }))),
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
        el('span', { class: 'person-meta', text: [p.role, p.state].filter(Boolean).join(' · ').replaceAll('_', ' ') })));
  }));
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

function route() {
  const link = linkToken();
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
  leaveCurrent();
  setState('idle');
  showView('sessions-view');
  loadSessions();
}

function init() {
  installDebug(() => current?.session.call ?? null, {
    localStream: () => current?.media.stream ?? null,
    participantId: () => current?.session.participantId ?? null,
  });

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
  window.addEventListener('pagehide', () => current?.session.leave());
  route();
}

init();
