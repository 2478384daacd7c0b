// The customer page (/c/{jwt}): camera preview, name, Join; then the waiting
// room, the call, and the end. The link token is the last path segment.

import { AudioMeter, playTone, renderResult, runDiagnostics } from './diagnostics.js';
import { ExpertPointer, handoverText } from './invite.js';
import { LocalMedia, describeMediaError } from './media.js';
import { Session } from './session.js';
import { CaptionsStrip, readerLanguage } from './captions.js';
import { EmergencyShare } from './emergency.js';
import { Voicemail } from './voicemail.js';
import { startStats } from './stats.js';
import {
  AnnotationLayer, ScreenShare, SnapshotAnnotations, Timeline, bindChatForm, safeURL, snapshotIdOf, upload, uploadFile,
} from './tools.js';
import {
  $, VideoGrid, clearNotices, el, installDebug, notify, setState, setStatus, setToggle, showView,
} from './ui.js';

const media = new LocalMedia();
let session = null;
let roster = [];
let chatOpen = true;
let capabilitiesSent = false;
let cameraRefused = false;
let cameraNoticeTimer = 0;
let lastCameraCommand = '';
let cameraBefore = null; // {torch, zoom} before the specialist changed them

const timeline = new Timeline($('chat-list'), () => session?.participantId ?? null);
const captions = new CaptionsStrip({ strip: $('captions-strip'), toggle: $('captions-button') });
// The specialist's drawings and pointer, over the self-view (the camera
// picture they are drawn on; mirrored like the self-view).
const annotations = new AnnotationLayer({ mirrored: () => media.facingUser, follow: true });
const screenShare = new ScreenShare(() => session);
// Video messages when nobody could take the call, and location sharing in an emergency.
const voicemail = new Voicemail({ sessionId: () => session?.sessionId ?? '', token: () => linkToken() });
const emergencyShare = new EmergencyShare({ send: (type, payload) => !!session?.send(type, payload) });

// The photos the specialist marks up: every snapshot's marks are kept (history
// replays them); the one being marked up is shown over the call.
const snapshotMarks = new SnapshotAnnotations();
const snapshots = new Map(); // snapshot id → snapshot info from snapshot_taken
let shownSnapshot = ''; // the snapshot in the viewer, '' when closed
let dismissedSnapshot = ''; // closed by the customer: not reopened by more marks on it

function linkToken() {
  const segments = window.location.pathname.split('/').filter(Boolean);
  if (segments.length < 2) return '';
  try {
    return decodeURIComponent(segments[segments.length - 1]);
  } catch {
    return '';
  }
}

const grid = new VideoGrid($('remote-videos'), (stream) => {
  const p = roster.find((x) => x.participant_id && (stream.id === x.participant_id || stream.id.includes(x.participant_id)));
  return p ? (p.name || roleName(p.role)) : '';
});

// An invited expert (this page opened with an expert link) points at videos.
new ExpertPointer($('remote-videos'), {
  send: (type, payload) => !!session?.send(type, payload),
  role: () => session?.role ?? null,
  participantOf: (streamId) => roster.find((x) => x.participant_id && streamId.includes(x.participant_id))?.participant_id ?? '',
});

function roleName(role) {
  return role === 'specialist' ? 'Specialist' : role === 'expert' ? 'Expert' : 'Participant';
}

// ---------------------------------------------------------------- tools

function inSession(state) {
  return state === 'waiting' || state === 'in-call' || state === 'reconnecting';
}

function updateToolsVisibility() {
  const state = document.body.dataset.state;
  $('chat-panel').hidden = !(inSession(state) && chatOpen);
  $('chat-toggle-button').setAttribute('aria-expanded', String(chatOpen));
  $('file-row').hidden = state !== 'in-call';
  $('share-screen-button').hidden = state !== 'in-call' || !ScreenShare.supported;
}

function onToolMessage(type, payload, live) {
  const me = session?.participantId ?? null;
  const mine = payload?.from?.participant_id && payload.from.participant_id === me;
  switch (type) {
    case 'history': {
      annotations.reset();
      snapshotMarks.reset();
      let lastTarget = '';
      for (const e of Array.isArray(payload.entries) ? payload.entries : []) {
        if (e && typeof e.type === 'string') onToolMessage(e.type, e.payload ?? {}, false);
        if (e?.type === 'annotation' && typeof e.payload?.target === 'string') lastTarget = e.payload.target;
      }
      // Back after a reload: the photo the specialist was marking up comes back with its marks.
      const id = snapshotIdOf(lastTarget);
      if (id && id !== dismissedSnapshot && snapshotMarks.strokes(id).length > 0) showSnapshot(id);
      else if (shownSnapshot) showSnapshot(shownSnapshot);
      break;
    }
    case 'chat':
      if (timeline.chat(payload) && live && !mine && !chatOpen) {
        notify(`New message: ${String(payload.text ?? '').slice(0, 80)}`, { kind: 'info', timeout: 5000 });
      }
      break;
    case 'file_shared':
      timeline.file(payload);
      break;
    case 'annotation': {
      const id = snapshotIdOf(payload.target);
      if (id) {
        snapshotMarks.apply(payload);
        timeline.event({ ...payload, id: `markup-${id}`, type: 'annotation' }, 'The specialist marked up a photo.', viewButton(id));
        if (live && payload.action === 'stroke' && id !== dismissedSnapshot) showSnapshot(id);
      } else if (me && payload.target === `video:${me}`) {
        annotations.apply(payload);
        // Drawing on the live picture again: back to the call.
        if (live && payload.action === 'stroke') hideSnapshot();
      }
      break;
    }
    case 'pointer': {
      const id = snapshotIdOf(payload.target);
      if (id) {
        snapshotMarks.pointer(payload);
        if (live && payload.visible && id !== dismissedSnapshot && id !== shownSnapshot) showSnapshot(id);
      } else if (me && payload.target === `video:${me}`) {
        annotations.pointer(payload);
      }
      break;
    }
    case 'snapshot_request':
      if (live) sendSnapshot();
      break;
    case 'handover':
      timeline.event(payload, handoverText(payload));
      break;
    case 'snapshot_taken': {
      const snap = payload.snapshot ?? {};
      if (snap.id) snapshots.set(snap.id, snap); // a replayed entry brings a freshly signed URL
      timeline.event(payload, 'A photo was taken from your camera.', snap.id ? viewButton(snap.id) : null);
      if (snap.id && snap.id === shownSnapshot) showSnapshot(snap.id);
      break;
    }
    case 'geolocation_request':
      timeline.event(payload, 'The specialist asked for your location.');
      if (live) shareLocation();
      break;
    case 'geolocation':
      if (mine) timeline.event(payload, payload.declined ? 'You did not share your location.' : 'You shared your location.');
      break;
    case 'camera_control':
      if (live) controlCamera(payload);
      break;
    case 'emergency':
      emergencyShare.apply(payload, live);
      break;
    case 'after_hours':
      voicemail.open('after_hours', payload.opens_at ?? '');
      break;
    case 'recording': {
      // `starting` comes to everyone before anything is recorded.
      const starting = !payload.active && !!payload.starting;
      $('recording-indicator').hidden = !payload.active;
      showRecordingNotice(starting, live);
      timeline.event(payload, payload.active ? 'The specialist started recording this call.'
        : starting ? 'This call is about to be recorded.' : 'Recording stopped.');
      if (live && payload.active) notify('This call is now being recorded.', { kind: 'warning', timeout: 8000 });
      break;
    }
    case 'screen_share':
      if (!mine) timeline.event(payload, payload.active ? 'Started sharing their screen.' : 'Stopped sharing their screen.');
      break;
    default:
      break;
  }
}

// The "about to be recorded" notice stays up a while even when the recording
// starts at once, so that it is read, not just flashed.
const RECORDING_NOTICE_MS = 8000;
let recordingNoticeUntil = 0;
let recordingNoticeTimer = 0;

function showRecordingNotice(starting, live) {
  const notice = $('recording-notice');
  clearTimeout(recordingNoticeTimer);
  if (starting) {
    notice.hidden = false;
    recordingNoticeUntil = live ? Date.now() + RECORDING_NOTICE_MS : 0;
    return;
  }
  const left = recordingNoticeUntil - Date.now();
  if (notice.hidden || left <= 0) {
    notice.hidden = true;
    return;
  }
  recordingNoticeTimer = setTimeout(() => { notice.hidden = true; }, left);
}

/** A "View" button for a timeline entry about a photo. */
function viewButton(id) {
  return el('button', {
    type: 'button', class: 'link-button', text: 'View', dataset: { testid: 'view-snapshot', snapshotId: id },
    on: { click: () => { dismissedSnapshot = ''; showSnapshot(id); } },
  });
}

/** Shows a snapshot over the call with the specialist's marks on it. */
function showSnapshot(id) {
  const snap = snapshots.get(id);
  if (!snap) return;
  const img = $('snapshot-image');
  const url = safeURL(snap.url);
  if (shownSnapshot && shownSnapshot !== id) snapshotMarks.layer(shownSnapshot).bind(null, null);
  shownSnapshot = id;
  if (img.getAttribute('src') !== url) img.src = url;
  $('snapshot-viewer').hidden = false;
  $('snapshot-viewer').dataset.snapshotId = id;
  snapshotMarks.layer(id).bind($('snapshot-annotations'), img);
}

function hideSnapshot() {
  if (!shownSnapshot) return;
  snapshotMarks.layer(shownSnapshot).bind(null, null);
  shownSnapshot = '';
  $('snapshot-viewer').hidden = true;
  delete $('snapshot-viewer').dataset.snapshotId;
}

// The frame for a snapshot: ImageCapture's full-resolution photo where the
// browser has it, else the current video frame drawn to a canvas.
async function captureFrame() {
  const track = media.videoTrack;
  if (!track || track.readyState !== 'live') throw new Error('your camera is off');
  if (typeof ImageCapture === 'function') {
    try {
      const photo = await Promise.race([
        new ImageCapture(track).takePhoto(),
        new Promise((_, reject) => { setTimeout(() => reject(new Error('takePhoto timed out')), 4000); }),
      ]);
      if (photo && /^image\/(jpeg|png)$/.test(photo.type) && photo.size > 0) return photo;
    } catch (err) {
      console.warn(`assist: takePhoto failed, grabbing a video frame instead: ${err.message}`);
    }
  }
  let video = $('self-view');
  if (!video.videoWidth) {
    video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.srcObject = new MediaStream([track]);
    await video.play();
    if (!video.videoWidth) await new Promise((resolve) => { video.addEventListener('resize', resolve, { once: true }); });
  }
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => { canvas.toBlob(resolve, 'image/jpeg', 0.9); });
  if (!blob) throw new Error('the picture could not be encoded');
  return blob;
}

async function sendSnapshot() {
  const id = session?.sessionId;
  if (!id) return;
  try {
    const photo = await captureFrame();
    await upload(`/v1/sessions/${encodeURIComponent(id)}/snapshots`, linkToken(), photo);
    notify('The specialist took a photo with your camera.', { kind: 'info', timeout: 5000 });
  } catch (err) {
    notify(`A photo could not be sent: ${err.message}`);
  }
}

function shareLocation() {
  const reply = (payload) => session?.send('geolocation', payload);
  if (!navigator.geolocation) {
    reply({ declined: true, reason: 'Location is not available on this device.' });
    return;
  }
  notify('The specialist asked for your location. Your browser asks you to allow it.', { kind: 'info', timeout: 8000 });
  navigator.geolocation.getCurrentPosition((pos) => {
    reply({
      latitude: pos.coords.latitude,
      longitude: pos.coords.longitude,
      accuracy: Math.max(0, pos.coords.accuracy || 0),
      timestamp: Math.round(pos.timestamp || Date.now()),
    });
  }, (err) => {
    reply({
      declined: true,
      reason: err.code === 1 ? 'The customer did not allow it.' : 'The location could not be found.',
    });
  }, { enableHighAccuracy: true, timeout: 30000, maximumAge: 60000 });
}

/** What the camera can do, for the specialist's controls. */
async function cameraCapabilities() {
  const track = media.videoTrack;
  const caps = track?.getCapabilities?.() ?? {};
  const settings = track?.getSettings?.() ?? {};
  const facing = Array.isArray(caps.facingMode) ? caps.facingMode : [];
  let cameras = 0;
  try {
    cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput').length;
  } catch {
    cameras = 0;
  }
  const out = {
    can_flip: !!track && (cameras > 1 || (facing.includes('user') && facing.includes('environment'))),
    torch: !!track && 'torch' in caps,
    zoom: !!track && !!caps.zoom && Number.isFinite(caps.zoom.max) && caps.zoom.max > caps.zoom.min,
  };
  if (settings.facingMode) out.facing_mode = String(settings.facingMode).slice(0, 32);
  if (out.zoom) {
    out.zoom_min = caps.zoom.min;
    out.zoom_max = caps.zoom.max;
    out.zoom_step = caps.zoom.step || 0.1;
    out.zoom_value = settings.zoom ?? caps.zoom.min;
  }
  return out;
}

async function sendCapabilities() {
  await media.start();
  if (session?.state !== 'in-call') return;
  session.send('camera_capabilities', await cameraCapabilities());
}

function showCameraNotice() {
  $('camera-notice').hidden = false;
  clearTimeout(cameraNoticeTimer);
  cameraNoticeTimer = setTimeout(() => { $('camera-notice').hidden = true; }, 15000);
}

async function controlCamera({ command, value }) {
  const reply = (applied, reason) => {
    const payload = { command, applied };
    if (reason) payload.reason = String(reason).slice(0, 200);
    session?.send('camera_control_result', payload);
  };
  if (cameraRefused) {
    reply(false, 'The customer refused camera control.');
    return;
  }
  lastCameraCommand = command;
  showCameraNotice();
  try {
    const track = media.videoTrack;
    if (!track) throw new Error('the camera is off');
    const caps = track.getCapabilities?.() ?? {};
    const settings = track.getSettings?.() ?? {};
    cameraBefore ??= { torch: settings.torch ?? false, zoom: settings.zoom };
    switch (command) {
      case 'flip':
        await media.flipCamera();
        break;
      case 'torch':
        if (!('torch' in caps)) throw new Error('this camera has no torch');
        await track.applyConstraints({ advanced: [{ torch: value === 1 }] });
        break;
      case 'zoom': {
        if (!caps.zoom) throw new Error('this camera cannot zoom');
        const z = Math.min(caps.zoom.max, Math.max(caps.zoom.min, Number(value)));
        await track.applyConstraints({ advanced: [{ zoom: z }] });
        break;
      }
      default:
        throw new Error('unknown command');
    }
    reply(true);
    if (command === 'flip') sendCapabilities().catch(() => {});
  } catch (err) {
    reply(false, err.message);
  }
}

async function refuseCameraControl() {
  cameraRefused = true;
  clearTimeout(cameraNoticeTimer);
  $('camera-notice').hidden = true;
  const track = media.videoTrack;
  const before = cameraBefore;
  cameraBefore = null;
  if (track && before) {
    const undo = {};
    if (before.torch !== undefined && 'torch' in (track.getCapabilities?.() ?? {})) undo.torch = before.torch;
    if (before.zoom !== undefined) undo.zoom = before.zoom;
    if (Object.keys(undo).length) await track.applyConstraints({ advanced: [undo] }).catch(() => {});
  }
  if (lastCameraCommand) {
    session?.send('camera_control_result', { command: lastCameraCommand, applied: false, reason: 'The customer refused camera control.' });
  }
  notify('The specialist can no longer control your camera.', { kind: 'info', timeout: 5000 });
}

async function sendFile() {
  const input = $('file-input');
  const file = input.files?.[0];
  input.value = '';
  if (!file || !session?.sessionId) return;
  const button = $('send-file-button');
  button.disabled = true;
  setStatus(`Sending ${file.name}…`);
  try {
    await uploadFile(session.sessionId, linkToken(), file);
    setStatus('File sent');
  } catch (err) {
    notify(`The file could not be sent: ${err.message}`);
    setStatus('In call');
  } finally {
    button.disabled = false;
  }
}

async function toggleScreenShare() {
  try {
    if (screenShare.active) screenShare.stop();
    else await screenShare.start();
  } catch (err) {
    if (err.name !== 'NotAllowedError') notify(`The screen could not be shared: ${err.message}`);
  }
}

// ---------------------------------------------------------------- setup test

// While waiting, the page tests the camera, microphone and network (through
// the SFU's echo) once, shows the verdict, and sends the figures to the
// specialists (`diagnostics`). Admission stops a test under way: the call
// needs the bandwidth.
let diagRun = null; // {abort: AbortController} while a test runs
let diagResult = null;
let diagSpeaker = 'untested';
let diagTried = false;
const diagMeter = new AudioMeter((level) => { $('waiting-level').value = level; });

async function startDiagnostics() {
  if (diagRun || !session) return;
  const run = { abort: new AbortController() };
  diagRun = run;
  $('waiting-diagnostics').hidden = false;
  $('waiting-diag-again').hidden = true;
  $('waiting-diag-result').replaceChildren();
  try {
    await media.start();
    diagMeter.start(media.stream?.getAudioTracks()[0]);
    const result = await runDiagnostics({
      media,
      meter: diagMeter,
      token: linkToken(),
      speaker: diagSpeaker,
      signal: run.abort.signal,
      onProgress: (text) => { $('waiting-diag-progress').textContent = text; },
    });
    if (diagRun !== run) return;
    diagResult = result;
    $('waiting-diag-progress').textContent = '';
    renderResult($('waiting-diag-result'), result);
    if (session?.state === 'waiting' || session?.state === 'in-call') session.send('diagnostics', result);
  } catch (err) {
    if (err.name !== 'AbortError') console.warn(`assist: setup test: ${err.message}`);
    $('waiting-diag-progress').textContent = '';
  } finally {
    if (diagRun === run) {
      diagRun = null;
      diagMeter.stop();
      $('waiting-diag-again').hidden = false;
    }
  }
}

function stopDiagnostics() {
  const run = diagRun;
  diagRun = null;
  run?.abort.abort();
  diagMeter.stop();
}

// ---------------------------------------------------------------- media

function attachLocal() {
  for (const id of ['preview', 'waiting-preview', 'self-view']) {
    const video = $(id);
    if (video.srcObject !== media.stream) video.srcObject = media.stream;
    video.classList.toggle('mirrored', media.facingUser);
    video.hidden = !media.hasVideo;
  }
  annotations.render();
  setToggle($('preview-mic-button'), !media.audioEnabled, media.audioEnabled ? 'Mute' : 'Unmute');
  setToggle($('mic-button'), !media.audioEnabled, media.audioEnabled ? 'Mute' : 'Unmute');
  setToggle($('preview-camera-button'), !media.videoEnabled, media.videoEnabled ? 'Camera off' : 'Camera on');
  setToggle($('camera-button'), !media.videoEnabled, media.videoEnabled ? 'Camera off' : 'Camera on');
  for (const id of ['preview-mic-button', 'mic-button']) $(id).disabled = !media.hasAudio;
  for (const id of ['preview-camera-button', 'camera-button']) $(id).disabled = !media.hasVideo;
}

async function startPreview() {
  await media.start();
  attachLocal();
  const message = $('preview-message');
  if (media.error && !media.hasVideo) {
    message.textContent = describeMediaError(media.error);
    message.hidden = false;
  } else if (media.error) {
    notify(describeMediaError(media.error), { kind: 'warning' });
  }
  $('switch-camera-button').hidden = !(await media.canSwitchCamera().catch(() => false));
}

function join(event) {
  event.preventDefault();
  if (session) return;
  const token = linkToken();
  if (!token) {
    finish('error', { message: 'This link is not complete. Open the link from your message again.' });
    return;
  }
  $('join-button').disabled = true;
  const name = $('name-input').value.trim().slice(0, 80);
  session = new Session({ join: { token, name, language: readerLanguage() }, media });
  session.addEventListener('state', ({ detail }) => onState(detail));
  session.addEventListener('waiting', ({ detail }) => {
    // The place is in the organisation's whole line; the estimate is absent until the
    // organisation has admitted someone. After queue-timeout the server says so once: the
    // notice stays until the customer keeps waiting or leaves a message (a chat message).
    const pos = Number(detail.position);
    const place = pos > 1 ? `You are number ${pos} in line` : pos === 1 ? 'You are next in line' : '';
    const secs = detail.estimated_wait_seconds;
    const mins = Math.max(1, Math.round(Number(secs) / 60));
    const about = place && Number.isFinite(Number(secs)) && secs !== null
      ? ` · about ${mins} minute${mins === 1 ? '' : 's'}` : '';
    const el = $('queue-position');
    const notice = el.querySelector('.queue-timeout');
    el.textContent = place ? `${place}${about}.` : '';
    if (notice && !detail.timed_out) el.append(notice);
    if (!detail.timed_out) return;
    const box = document.createElement('span');
    box.className = 'queue-timeout';
    box.dataset.testid = 'queue-timeout';
    const text = document.createElement('span');
    text.textContent = ' Nobody could take your call yet. You can keep waiting, or leave a message for the specialists.';
    const keep = document.createElement('button');
    keep.type = 'button';
    keep.className = 'button';
    keep.textContent = 'Keep waiting';
    keep.addEventListener('click', () => box.remove());
    const leave = document.createElement('button');
    leave.type = 'button';
    leave.className = 'button';
    leave.textContent = 'Leave a message';
    leave.addEventListener('click', () => {
      box.remove();
      voicemail.open('queue_timeout');
      chatOpen = true;
      updateToolsVisibility();
      $('chat-input').placeholder = 'Your message for the specialists';
      $('chat-input').focus();
    });
    box.append(text, document.createElement('br'), keep, ' ', leave);
    el.append(box);
  });
  session.addEventListener('participants', ({ detail }) => {
    roster = detail.participants;
    grid.relabel();
  });
  session.addEventListener('stream', ({ detail }) => {
    grid.add(detail.stream);
    $('remote-placeholder').hidden = grid.size > 0;
  });
  session.addEventListener('streamremoved', ({ detail }) => {
    grid.remove(detail.stream);
    $('remote-placeholder').hidden = grid.size > 0;
  });
  session.addEventListener('connectionstate', ({ detail }) => {
    if (session?.state !== 'in-call') return;
    if (detail.state === 'connected') setStatus('Connected');
    else if (detail.state === 'disconnected' || detail.state === 'failed') setStatus('Connection unstable, reconnecting…');
  });
  session.addEventListener('notice', ({ detail }) => notify(detail.message));
  session.addEventListener('message', ({ detail }) => captions.handle(detail.type, detail.payload ?? {}) || onToolMessage(detail.type, detail.payload ?? {}, true));
  session.start();
  startStats(session);
}

function onState({ state, position, reason, message }) {
  setState(state);
  updateToolsVisibility();
  if (state === 'waiting' && !diagTried) {
    diagTried = true;
    startDiagnostics();
  } else if (state !== 'waiting' && state !== 'reconnecting') {
    stopDiagnostics();
  }
  if (state !== 'in-call') {
    capabilitiesSent = false;
    screenShare.stop();
  } else if (!capabilitiesSent && session?.role !== 'expert') { // an invited expert's camera is not controlled
    capabilitiesSent = true;
    sendCapabilities().catch((err) => console.warn(`assist: camera capabilities: ${err.message}`));
  }
  switch (state) {
    case 'connecting':
      setStatus('Connecting…');
      break;
    case 'reconnecting':
      setStatus('Connection lost, reconnecting…');
      break;
    case 'waiting':
      setStatus(position > 0 ? `Waiting, number ${position} in line` : 'Waiting for a specialist');
      showView('waiting-view');
      break;
    case 'in-call':
      voicemail.close();
      setStatus('In call');
      $('remote-placeholder').hidden = grid.size > 0;
      showView('call-view');
      break;
    case 'denied':
      finish(state, { title: 'You were not admitted', message: reason || 'The specialist could not take your call. Please try again later.' });
      break;
    case 'ended':
      finish(state, reason === 'left'
        ? { title: 'You left the call', message: 'You can join again while the session is open.', rejoin: true }
        : { title: 'The session has ended', message: 'Thank you. You can close this page.' });
      break;
    case 'error':
      finish(state, { title: 'Unable to continue the call', message, rejoin: true });
      break;
    default:
      break;
  }
}

function finish(state, { title = 'Something went wrong', message = '', rejoin = false } = {}) {
  voicemail.close();
  emergencyShare.stop();
  setState(state);
  updateToolsVisibility();
  stopDiagnostics();
  screenShare.stop();
  annotations.reset();
  hideSnapshot();
  snapshotMarks.reset();
  clearTimeout(recordingNoticeTimer);
  $('recording-notice').hidden = true;
  $('camera-notice').hidden = true;
  setStatus(title);
  media.stop();
  grid.clear();
  clearNotices();
  $('end-title').textContent = title;
  $('end-message').textContent = message;
  $('rejoin-button').hidden = !rejoin;
  showView('end-view');
  $('end-title').focus();
}

function init() {
  installDebug(() => session?.call ?? null, {
    localStream: () => media.stream,
    participantId: () => session?.participantId ?? null,
    annotations: () => annotations.strokes(),
    pointer: () => annotations.pointerAt,
    snapshotAnnotations: (id) => snapshotMarks.strokes(id),
    snapshotPointer: (id) => snapshotMarks.layer(id).pointerAt,
    shownSnapshot: () => shownSnapshot,
    diagnostics: () => diagResult,
  });
  media.addEventListener('change', attachLocal);
  annotations.bind($('self-annotations'), $('self-view'));
  bindChatForm($('chat-form'), $('chat-input'), (text) => !!session?.send('chat', { text }), (m) => notify(m));
  $('chat-toggle-button').addEventListener('click', () => {
    chatOpen = !chatOpen;
    updateToolsVisibility();
    if (chatOpen) $('chat-input').focus();
  });
  $('send-file-button').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', sendFile);
  $('share-screen-button').addEventListener('click', toggleScreenShare);
  screenShare.addEventListener('change', ({ detail }) => {
    setToggle($('share-screen-button'), detail.active, detail.active ? 'Stop sharing' : 'Share screen');
  });
  $('camera-refuse-button').addEventListener('click', refuseCameraControl);
  $('snapshot-close').addEventListener('click', () => {
    dismissedSnapshot = shownSnapshot;
    hideSnapshot();
  });

  $('join-form').addEventListener('submit', join);
  $('cancel-button').addEventListener('click', () => session?.leave());
  $('waiting-diag-again').addEventListener('click', () => startDiagnostics());
  $('waiting-speaker-button').addEventListener('click', async () => {
    const button = $('waiting-speaker-button');
    button.disabled = true;
    diagSpeaker = await playTone();
    button.disabled = false;
    notify(diagSpeaker === 'played'
      ? 'Did you hear two notes? If not, check your speaker or headphones and the volume.'
      : 'The test sound could not be played. Check your speaker or headphones.', { kind: 'info', timeout: 6000 });
  });
  $('hangup-button').addEventListener('click', () => session?.leave());
  $('rejoin-button').addEventListener('click', () => window.location.reload());
  const toggleMic = () => media.setAudioEnabled(!media.audioEnabled);
  const toggleCamera = () => media.setVideoEnabled(!media.videoEnabled);
  $('preview-mic-button').addEventListener('click', toggleMic);
  $('mic-button').addEventListener('click', toggleMic);
  $('preview-camera-button').addEventListener('click', toggleCamera);
  $('camera-button').addEventListener('click', toggleCamera);
  $('switch-camera-button').addEventListener('click', async () => {
    const button = $('switch-camera-button');
    button.disabled = true;
    try {
      await media.switchCamera();
    } catch (err) {
      notify(`The camera could not be switched: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
  // Closing the tab hangs up at once instead of waiting for the server to
  // notice the dead socket.
  // A reload or a closed tab is not hanging up: the specialist sees "reconnecting" until the grace ends.
  window.addEventListener('pagehide', () => session?.disconnect());

  if (!linkToken()) {
    finish('error', { message: 'This link is not complete. Open the link from your message again.' });
    return;
  }
  showView('join-view');
  setStatus('Ready to join');
  setState('idle');
  startPreview().catch((err) => notify(`The camera preview failed: ${err.message}`));
}

init();
