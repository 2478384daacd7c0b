// Video messages from the customer page. When nobody could take the call
// (the queue timed out) or the organisation is closed (after_hours), the
// customer can record a short video, or audio-only, message with
// MediaRecorder, watch it back, record it again, and send it with their
// contact details (POST /v1/sessions/{id}/video-messages with the link token).

import { upload } from './tools.js';
import { $, el, notify } from './ui.js';

const MAX_SECONDS = 120;

/** The container type the browser records into, or '' for its default. */
function recorderType(audioOnly) {
  const candidates = audioOnly
    ? ['audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus', 'audio/mp4']
    : ['video/webm;codecs=vp8,opus', 'video/webm', 'video/mp4'];
  if (typeof MediaRecorder === 'undefined') return '';
  return candidates.find((t) => MediaRecorder.isTypeSupported(t)) ?? '';
}

export class Voicemail {
  #sessionId;
  #token;
  #panel;
  #recorder = null;
  #chunks = [];
  #blob = null;
  #durationMs = 0;
  #startedAt = 0;
  #timer = 0;
  #reason = '';
  #sent = false;
  #previewURL = '';

  /**
   * @param {{sessionId: () => string, token: () => string}} opts
   */
  constructor({ sessionId, token }) {
    this.#sessionId = sessionId;
    this.#token = token;
    this.#panel = $('voicemail-panel');
  }

  static get supported() {
    return typeof MediaRecorder === 'function';
  }

  /** Offers the message form; reason is 'queue_timeout' or 'after_hours'. */
  open(reason, opensAt = '') {
    if (!this.#panel || this.#sent) return;
    if (!Voicemail.supported) {
      notify('This browser cannot record a message. Please write one in the chat instead.', { kind: 'info' });
      return;
    }
    if (this.#reason && !this.#panel.hidden) return;
    this.#reason = reason;
    this.#render(opensAt);
    this.#panel.hidden = false;
    $('voicemail-name')?.focus();
  }

  /** Stops a recording under way and hides the form (admitted, left, ended). */
  close() {
    this.#stopRecording(true);
    if (this.#panel) this.#panel.hidden = true;
  }

  #render(opensAt) {
    const when = opensAt ? new Date(opensAt) : null;
    const intro = this.#reason === 'after_hours'
      ? `We are closed right now${when && !Number.isNaN(when.getTime()) ? ` and open again ${when.toLocaleString()}` : ''}. Leave us a short message and we will get back to you.`
      : 'Nobody could take your call yet. Leave a short message and we will get back to you.';
    const field = (id, label, type, autocomplete) => el('div', { class: 'voicemail-field' },
      el('label', { for: id, text: label }),
      el('input', { id, type, autocomplete, maxlength: type === 'email' ? 254 : 80, 'data-testid': id }));
    this.#panel.replaceChildren(
      el('h2', { id: 'voicemail-title', text: 'Leave a message' }),
      el('p', { class: 'voicemail-intro', text: intro }),
      field('voicemail-name', 'Your name', 'text', 'name'),
      field('voicemail-phone', 'Phone (with country code, +…)', 'tel', 'tel'),
      field('voicemail-email', 'Email', 'email', 'email'),
      el('label', { class: 'voicemail-audio' },
        el('input', { id: 'voicemail-audio-only', type: 'checkbox', 'data-testid': 'voicemail-audio-only' }),
        ' Audio only (no video)'),
      el('video', { id: 'voicemail-preview', class: 'voicemail-preview', playsinline: true, controls: true, hidden: true, 'data-testid': 'voicemail-preview' }),
      el('p', { id: 'voicemail-status', class: 'voicemail-status', role: 'status', 'data-testid': 'voicemail-status' }),
      el('div', { class: 'panel-actions' },
        el('button', { id: 'voicemail-record', type: 'button', class: 'button primary', text: 'Record', 'data-testid': 'voicemail-record', on: { click: () => this.#toggleRecording() } }),
        el('button', { id: 'voicemail-send', type: 'button', class: 'button primary', text: 'Send message', hidden: true, 'data-testid': 'voicemail-send', on: { click: () => this.#send() } })),
      el('p', { class: 'fineprint', text: `At most ${MAX_SECONDS / 60} minutes. Nothing is sent until you press “Send message”.` }),
    );
    const name = $('name-input')?.value?.trim();
    if (name) $('voicemail-name').value = name;
  }

  #status(text) {
    const s = $('voicemail-status');
    if (s) s.textContent = text;
  }

  #toggleRecording() {
    if (this.#recorder) this.#stopRecording(false);
    else this.#startRecording().catch((err) => {
      this.#status('');
      notify(`The message could not be recorded: ${err.message}`);
    });
  }

  async #startRecording() {
    // A stream of its own: the page's camera stream may be busy with the setup test, and
    // the customer's mute buttons must not change the message.
    let audioOnly = $('voicemail-audio-only').checked;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: audioOnly ? false : { width: { ideal: 1280 }, height: { ideal: 720 } } });
    } catch (err) {
      if (audioOnly) throw err;
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false }); // no camera: audio only
    }
    audioOnly = stream.getVideoTracks().length === 0;
    const tracks = stream.getTracks();
    if (tracks.length === 0) throw new Error('no camera or microphone is available');
    const type = recorderType(audioOnly);
    const recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
    this.#chunks = [];
    this.#blob = null;
    recorder.addEventListener('dataavailable', (e) => { if (e.data?.size) this.#chunks.push(e.data); });
    recorder.addEventListener('stop', () => {
      for (const t of tracks) t.stop();
      this.#recorded(recorder, audioOnly);
    });
    recorder.addEventListener('error', (e) => {
      console.warn(`assist: recording a message: ${e.error?.name ?? 'error'}: ${e.error?.message ?? ''}`);
    });
    recorder.start(1000);
    this.#recorder = recorder;
    this.#startedAt = performance.now();
    this.#panel.dataset.audioOnly = String(audioOnly);
    $('voicemail-preview').hidden = true;
    $('voicemail-send').hidden = true;
    $('voicemail-record').textContent = 'Stop';
    this.#panel.dataset.recording = 'true';
    const tick = () => {
      const secs = Math.floor((performance.now() - this.#startedAt) / 1000);
      this.#status(`Recording… ${secs} s of ${MAX_SECONDS} s`);
      if (secs >= MAX_SECONDS) this.#stopRecording(false);
    };
    tick();
    this.#timer = setInterval(tick, 500);
  }

  #stopRecording(discard) {
    clearInterval(this.#timer);
    const recorder = this.#recorder;
    if (!recorder) return;
    this.#recorder = null;
    if (discard) recorder.ondataavailable = null;
    this.#durationMs = Math.round(performance.now() - this.#startedAt);
    if (recorder.state !== 'inactive') recorder.stop();
    delete this.#panel.dataset.recording;
  }

  #recorded(recorder, audioOnly) {
    if (!this.#panel || this.#panel.hidden) return;
    const blob = new Blob(this.#chunks, { type: recorder.mimeType || 'video/webm' });
    this.#chunks = [];
    if (blob.size === 0) {
      console.warn(`assist: recording a message: nothing recorded (${recorder.mimeType}, state ${recorder.state}, tracks ${recorder.stream.getTracks().map((t) => `${t.kind}:${t.readyState}:${t.muted}`).join(',')})`);
      this.#status('Nothing was recorded. Try again.');
      $('voicemail-record').textContent = 'Record';
      return;
    }
    this.#blob = blob;
    if (this.#previewURL) URL.revokeObjectURL(this.#previewURL);
    this.#previewURL = URL.createObjectURL(blob);
    const preview = $('voicemail-preview');
    preview.src = this.#previewURL;
    preview.hidden = false;
    this.#status(`Your ${audioOnly ? 'audio ' : ''}message: ${Math.round(this.#durationMs / 1000)} s. Watch it, record it again, or send it.`);
    $('voicemail-record').textContent = 'Record again';
    $('voicemail-send').hidden = false;
    this.#panel.dataset.recorded = 'true';
  }

  async #send() {
    const id = this.#sessionId();
    if (!this.#blob || !id) return;
    const q = new URLSearchParams({ duration_ms: String(Math.max(1, this.#durationMs)) });
    for (const [key, input] of [['name', 'voicemail-name'], ['phone', 'voicemail-phone'], ['email', 'voicemail-email']]) {
      const v = $(input).value.trim();
      if (v) q.set(key, v);
    }
    const lang = (navigator.language || '').toLowerCase();
    if (/^[a-z]{2,3}(-[a-z0-9]{2,8})*$/.test(lang)) q.set('language', lang);
    if (this.#panel.dataset.audioOnly === 'true') q.set('audio_only', 'true');
    const button = $('voicemail-send');
    button.disabled = true;
    $('voicemail-record').disabled = true;
    this.#status('Sending your message…');
    try {
      await upload(`/v1/sessions/${encodeURIComponent(id)}/video-messages?${q}`, this.#token(), this.#blob);
      this.#sent = true;
      this.#panel.dataset.sent = 'true';
      this.#panel.replaceChildren(
        el('h2', { text: 'Message sent' }),
        el('p', { class: 'voicemail-intro', 'data-testid': 'voicemail-sent', text: 'Thank you. We will get back to you as soon as we can. You can close this page, or keep waiting.' }),
      );
      if (this.#previewURL) URL.revokeObjectURL(this.#previewURL);
    } catch (err) {
      this.#status(`The message could not be sent: ${err.message}`);
      button.disabled = false;
      $('voicemail-record').disabled = false;
    }
  }
}
