// The customer page (/c/{jwt}): camera preview, name, Join; then the waiting
// room, the call, and the end. The link token is the last path segment.

import { LocalMedia, describeMediaError } from './media.js';
import { Session } from './session.js';
import {
  $, VideoGrid, clearNotices, installDebug, notify, setState, setStatus, setToggle, showView,
} from './ui.js';

const media = new LocalMedia();
let session = null;
let roster = [];

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

function roleName(role) {
  return role === 'specialist' ? 'Specialist' : 'Participant';
}

function attachLocal() {
  for (const id of ['preview', 'waiting-preview', 'self-view']) {
    const video = $(id);
    if (video.srcObject !== media.stream) video.srcObject = media.stream;
    video.classList.toggle('mirrored', media.facingUser);
    video.hidden = !media.hasVideo;
  }
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
  session = new Session({ join: { token, name }, media });
  session.addEventListener('state', ({ detail }) => onState(detail));
  session.addEventListener('waiting', ({ detail }) => {
    const pos = Number(detail.position);
    $('queue-position').textContent = pos > 1
      ? `You are number ${pos} in line.`
      : pos === 1 ? 'You are next in line.' : '';
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
  session.start();
}

function onState({ state, position, reason, message }) {
  setState(state);
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
  setState(state);
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
  });
  media.addEventListener('change', attachLocal);

  $('join-form').addEventListener('submit', join);
  $('cancel-button').addEventListener('click', () => session?.leave());
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
  window.addEventListener('pagehide', () => session?.leave());

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
