// The setup test: camera and microphone (permission, a live preview, an
// audio level meter), the speaker (a short tone on request), and the network
// (a loopback media test through the SFU's echo, /v1/echo, measuring round
// trip time, jitter, loss, the bitrate the browser can send and how media
// travels). The result is a typed object (the `diagnostics` message of
// docs/design.md) with a verdict for the customer: good, may be poor, or will
// not work, with what to do.
//
// The standalone page (/test, body.page-diagnostics) runs it on "Start the
// test"; the customer page runs it while waiting and sends the result to the
// specialists.

import { toRTCIceServers } from './call.js';
import { LocalMedia } from './media.js';
import { candidateFromWire, candidateToWire } from './signal.js';
import { el } from './ui.js';

/** Verdicts, as on the wire. */
export const Verdict = Object.freeze({
  GOOD: 'good',
  MAY_BE_POOR: 'may_be_poor',
  WILL_NOT_WORK: 'will_not_work',
});

const VERDICT_TEXT = {
  good: 'Your setup is good for a video call.',
  may_be_poor: 'A video call will work, but it may be poor.',
  will_not_work: 'A video call will not work from here.',
};

// What to do about each problem, in plain words; most serious first.
const ADVICE = {
  no_connection: 'Your network blocks video calls. Try another network (mobile data instead of Wi-Fi, or the other way round), or ask your IT department to allow video calls.',
  camera_blocked: 'Your browser blocks the camera. Allow it (the camera icon in the address bar), then reload this page.',
  camera_missing: 'No camera was found. You can still talk, but the specialist will not see you.',
  camera_error: 'Your camera is in use by another app. Close that app, then reload this page.',
  microphone_blocked: 'Your browser blocks the microphone. Allow it (the icon in the address bar), then reload this page.',
  microphone_missing: 'No microphone was found. The specialist will not hear you; you can still write in the chat.',
  microphone_error: 'Your microphone is in use by another app. Close that app, then reload this page.',
  microphone_silent: 'We heard nothing from your microphone. Check that it is not muted, and speak to test it.',
  high_loss: 'Your connection loses data. Move closer to your Wi-Fi router, or use another network.',
  high_rtt: 'Your connection is slow to respond: the conversation may lag.',
  high_jitter: 'Your connection is unsteady: sound and picture may break up.',
  low_bitrate: 'Your connection is slow: the picture may be blurry. Stop other downloads or videos.',
  tcp: 'Your network allows only web traffic, so the call takes a slower path and may lag.',
  relay: 'Your network blocks direct connections; the call goes through our relay.',
  speaker_failed: 'The test sound could not be played. Check your speaker or headphones and the volume.',
};

// Problems worth a word of advice that do not make a call worse: the relay
// carries media as well as a direct path, and a quiet room (with the
// browser's noise suppression) can look like a silent microphone.
const ADVISORY = new Set(['relay', 'microphone_silent']);

// Thresholds of the network figures.
const LIMITS = Object.freeze({
  rttMs: 400, // round trip through the SFU and back
  jitterMs: 50,
  lossPct: 5,
  lossFailPct: 30,
  minKbps: 150, // below this, even a small picture suffers
});

const CONNECT_TIMEOUT_MS = 12000;
const MEASURE_MS = 5000;
const WARMUP_MS = 1000;
const ECHO_SECONDS = 20;

const delay = (ms, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(timer); reject(abortError()); }, { once: true });
});

function abortError() {
  return Object.assign(new Error('the test was stopped'), { name: 'AbortError' });
}

/** The echo socket's URL on the page's own host. */
export function echoURL(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/v1/echo`;
}

/** ok | blocked | missing | error | untested, from what LocalMedia got. */
export function deviceStatus(media, kind) {
  const tracks = kind === 'video' ? media.stream?.getVideoTracks() : media.stream?.getAudioTracks();
  if (tracks?.length) return 'ok';
  switch (media.error?.name) {
    case undefined:
      return media.stream ? 'missing' : 'untested';
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
    case 'InsecureContextError':
      return 'blocked';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'missing';
    default:
      return 'error';
  }
}

/**
 * The microphone's level, 0..1 (-60 dBFS..0 dBFS), measured with a WebAudio
 * AnalyserNode ten times a second. `peak` is the loudest since start.
 */
export class AudioMeter {
  #ctx = null;
  #timer = 0;
  level = 0;
  peak = 0;

  /** @param {(level: number) => void} [onLevel] */
  constructor(onLevel = () => {}) {
    this.onLevel = onLevel;
  }

  start(track) {
    this.stop();
    if (!track || typeof AudioContext !== 'function') return false;
    const ctx = new AudioContext();
    this.#ctx = ctx;
    ctx.resume().catch(() => {});
    const source = ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = ctx.createAnalyser();
    // A long window (about 0.7 s), read ten times a second: every sample is
    // seen, so even a short sound counts for the peak.
    analyser.fftSize = 32768;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const scale = (amplitude) => {
      const db = amplitude > 0 ? 20 * Math.log10(amplitude) : -100;
      return Math.min(1, Math.max(0, (db + 60) / 60));
    };
    this.#timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      let max = 0;
      const recent = samples.length - 2048; // the meter shows the last ~40 ms
      for (let i = 0; i < samples.length; i++) {
        const v = samples[i];
        if (i >= recent) sum += v * v;
        if (Math.abs(v) > max) max = Math.abs(v);
      }
      this.level = scale(Math.sqrt(sum / 2048));
      this.peak = Math.max(this.peak, scale(max));
      this.onLevel(this.level);
    }, 100);
    return true;
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = 0;
    this.#ctx?.close().catch(() => {});
    this.#ctx = null;
  }
}

/** Plays a short two-note chime; resolves to "played" or "failed". */
export async function playTone() {
  if (typeof AudioContext !== 'function') return 'failed';
  const ctx = new AudioContext();
  try {
    await ctx.resume();
    if (ctx.state !== 'running') return 'failed';
    const gain = ctx.createGain();
    gain.connect(ctx.destination);
    const t = ctx.currentTime;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.3, t + 0.05);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 1.0);
    for (const [freq, at] of [[660, 0], [880, 0.3]]) {
      const osc = ctx.createOscillator();
      osc.frequency.value = freq;
      osc.connect(gain);
      osc.start(t + at);
      osc.stop(t + 1.0);
    }
    await new Promise((resolve) => { setTimeout(resolve, 1100); });
    return 'played';
  } catch {
    return 'failed';
  } finally {
    ctx.close().catch(() => {});
  }
}

/**
 * Tracks to send through the echo: copies of the camera and microphone, or a
 * generated picture when there is no camera (the network test needs video to
 * see what the connection can carry).
 */
function testTracks(stream) {
  const tracks = stream ? stream.getTracks().filter((t) => t.readyState === 'live').map((t) => t.clone()) : [];
  const cleanups = [];
  if (!tracks.some((t) => t.kind === 'video')) {
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 240;
    const g = canvas.getContext('2d');
    let frame = 0;
    const timer = setInterval(() => {
      frame++;
      g.fillStyle = `hsl(${(frame * 7) % 360} 60% 50%)`;
      g.fillRect(0, 0, canvas.width, canvas.height);
      g.fillStyle = '#fff';
      g.fillText(String(frame), 10 + (frame % 280), 120);
    }, 66);
    cleanups.push(() => clearInterval(timer));
    const video = canvas.captureStream(15).getVideoTracks()[0];
    if (video) tracks.push(video);
  }
  return { tracks, stop: () => { for (const t of tracks) t.stop(); for (const f of cleanups) f(); } };
}

/** The selected candidate pair of a stats report, or null. */
function selectedPair(stats) {
  let pair = null;
  stats.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId) ?? pair;
  });
  if (!pair) {
    stats.forEach((r) => {
      if (!pair && r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r;
    });
  }
  return pair;
}

function sumOf(stats, type, field, kind) {
  let n = 0;
  stats.forEach((r) => {
    if (r.type === type && (!kind || (r.kind ?? r.mediaType) === kind) && Number.isFinite(r[field])) n += r[field];
  });
  return n;
}

function maxOf(stats, type, field, kind) {
  let n;
  stats.forEach((r) => {
    if (r.type === type && (!kind || (r.kind ?? r.mediaType) === kind) && Number.isFinite(r[field])) n = Math.max(n ?? 0, r[field]);
  });
  return n;
}

const round = (v, digits = 1) => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : undefined);
const clamp = (v, lo, hi) => (Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : undefined);

/**
 * The network figures from two getStats reports taken `before` and `after`
 * the measuring window. Figures that cannot be measured are left out.
 */
export function networkFigures(before, after) {
  const out = { transport: 'none' };
  const pair = selectedPair(after);
  if (pair) {
    const local = after.get(pair.localCandidateId);
    if (local) {
      const type = local.candidateType;
      if (['host', 'srflx', 'prflx', 'relay'].includes(type)) out.candidate_type = type;
      const protocol = local.protocol === 'tcp' ? 'tcp' : 'udp';
      if (type === 'relay') {
        out.transport = ['udp', 'tcp', 'tls'].includes(local.relayProtocol) ? `turn-${local.relayProtocol}` : 'turn-udp';
      } else {
        out.transport = protocol;
      }
    }
    if (Number.isFinite(pair.currentRoundTripTime)) out.rtt_ms = pair.currentRoundTripTime * 1000;
    if (Number.isFinite(pair.availableOutgoingBitrate)) out.available_kbps = pair.availableOutgoingBitrate / 1000;
  }
  if (out.rtt_ms === undefined) {
    const rtt = maxOf(after, 'remote-inbound-rtp', 'roundTripTime');
    if (rtt !== undefined) out.rtt_ms = rtt * 1000;
  }
  // Jitter: the echoed audio as it comes back, and our audio as the SFU got it.
  const kind = sumOf(after, 'inbound-rtp', 'packetsReceived', 'audio') > 0 ? 'audio' : 'video';
  const jitter = Math.max(maxOf(after, 'inbound-rtp', 'jitter', kind) ?? -1, maxOf(after, 'remote-inbound-rtp', 'jitter', kind) ?? -1);
  if (jitter >= 0) out.jitter_ms = jitter * 1000;
  // Loss over the window, on the echoed tracks: a packet lost on the way to the
  // SFU is a gap in what comes back too, so this is the round trip's loss.
  const received = sumOf(after, 'inbound-rtp', 'packetsReceived') - sumOf(before, 'inbound-rtp', 'packetsReceived');
  const lost = Math.max(0, sumOf(after, 'inbound-rtp', 'packetsLost') - sumOf(before, 'inbound-rtp', 'packetsLost'));
  if (received + lost > 0) out.loss_pct = (100 * lost) / (received + lost);
  const sentBytes = (s) => sumOf(s, 'outbound-rtp', 'bytesSent') + sumOf(s, 'outbound-rtp', 'headerBytesSent');
  const t0 = maxOf(before, 'outbound-rtp', 'timestamp');
  const t1 = maxOf(after, 'outbound-rtp', 'timestamp');
  if (t0 !== undefined && t1 > t0) out.send_kbps = ((sentBytes(after) - sentBytes(before)) * 8) / (t1 - t0);
  out.received_packets = received; // for the verdict only; not on the wire
  return out;
}

/** The wire's network figures: rounded, within range, without helper fields. */
function wireNetwork(n) {
  const out = { transport: n.transport };
  if (n.candidate_type) out.candidate_type = n.candidate_type;
  const put = (key, v, hi, digits) => { const x = clamp(round(v, digits), 0, hi); if (x !== undefined) out[key] = x; };
  put('rtt_ms', n.rtt_ms, 60000, 1);
  put('jitter_ms', n.jitter_ms, 60000, 1);
  put('loss_pct', n.loss_pct, 100, 2);
  put('send_kbps', n.send_kbps, 1000000, 0);
  put('available_kbps', n.available_kbps, 1000000, 0);
  return out;
}

/**
 * Runs the echo test: sends copies of `stream`'s tracks to the SFU's echo and
 * measures what comes back. Resolves to the network figures; `transport` is
 * "none" when no connection could be made. Rejects only when aborted.
 *
 * @param {object} opts
 * @param {MediaStream|null} [opts.stream]
 * @param {string} [opts.token]  a session link's token (TURN credentials for that session)
 * @param {AbortSignal} [opts.signal]
 * @param {(text: string) => void} [opts.onProgress]
 */
export async function echoTest({ stream = null, token = '', signal, onProgress = () => {} } = {}) {
  const local = testTracks(stream);
  let ws = null;
  let pc = null;
  const cleanup = () => {
    local.stop();
    if (pc) pc.close();
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'done');
  };
  const failed = { transport: 'none' };
  signal?.addEventListener('abort', cleanup, { once: true });
  try {
    onProgress('Connecting to the test server…');
    ws = new WebSocket(echoURL());
    const send = (type, payload) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type, payload }));
    };
    let pendingCandidates = [];
    let resolveReady;
    let rejectReady;
    const ready = new Promise((resolve, reject) => { resolveReady = resolve; rejectReady = reject; });
    ws.addEventListener('open', () => send('echo_start', { ...(token ? { token } : {}), seconds: ECHO_SECONDS }));
    ws.addEventListener('close', () => rejectReady(new Error('the test server closed the connection')));
    ws.addEventListener('error', () => rejectReady(new Error('the test server cannot be reached')));
    ws.addEventListener('message', async (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      const payload = msg?.payload ?? {};
      try {
        switch (msg?.type) {
          case 'echo_ready':
            resolveReady(payload);
            break;
          case 'description':
            if (pc && payload.type === 'answer') {
              await pc.setRemoteDescription({ type: 'answer', sdp: String(payload.sdp ?? '') });
              const held = pendingCandidates;
              pendingCandidates = [];
              for (const c of held) await pc.addIceCandidate(c).catch(() => {});
            }
            break;
          case 'candidate':
            if (!pc) break;
            if (!pc.remoteDescription) pendingCandidates.push(candidateFromWire(payload));
            else await pc.addIceCandidate(candidateFromWire(payload)).catch(() => {});
            break;
          case 'error':
            console.warn(`assist: echo test: ${payload.code}: ${payload.message}`);
            rejectReady(new Error(payload.message || 'the test server refused the test'));
            break;
          default:
            break;
        }
      } catch (err) {
        console.warn(`assist: echo test: ${err.message}`);
      }
    });
    const info = await Promise.race([ready, delay(CONNECT_TIMEOUT_MS, signal).then(() => { throw new Error('the test server did not answer'); })]);

    pc = new RTCPeerConnection({ iceServers: toRTCIceServers(info.ice_servers), bundlePolicy: 'max-bundle' });
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (candidate && candidate.candidate) send('candidate', candidateToWire(candidate));
    });
    const sendStream = new MediaStream(local.tracks);
    for (const t of local.tracks) pc.addTrack(t, sendStream);
    await pc.setLocalDescription(await pc.createOffer());
    send('description', { type: 'offer', sdp: pc.localDescription.sdp });

    onProgress('Testing your connection…');
    const connected = await waitUntil(() => pc.connectionState === 'connected',
      () => pc.connectionState === 'failed' || pc.connectionState === 'closed', CONNECT_TIMEOUT_MS, signal);
    if (!connected) return failed;
    // Media must come back before the window opens.
    const flowing = async () => sumOf(await pc.getStats(), 'inbound-rtp', 'packetsReceived') > 0;
    await waitUntilAsync(flowing, 5000, signal);
    await delay(WARMUP_MS, signal);
    onProgress('Measuring your connection…');
    const before = await pc.getStats();
    await delay(MEASURE_MS, signal);
    const after = await pc.getStats();
    return networkFigures(before, after);
  } catch (err) {
    if (err.name === 'AbortError' || signal?.aborted) throw abortError();
    console.warn(`assist: echo test failed: ${err.message}`);
    return failed;
  } finally {
    signal?.removeEventListener('abort', cleanup);
    cleanup();
  }
}

async function waitUntil(ok, bad, timeoutMs, signal) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (ok()) return true;
    if (bad()) return false;
    await delay(100, signal);
  }
  return ok();
}

async function waitUntilAsync(ok, timeoutMs, signal) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok()) return true;
    await delay(200, signal);
  }
  return false;
}

/**
 * The verdict and its problems (most serious first) for a result's figures:
 * {camera, microphone, audio_level?, speaker?, network?}.
 */
export function assess(r) {
  const problems = [];
  const n = r.network;
  if (n && (n.transport === 'none' || n.received_packets === 0)) problems.push('no_connection');
  for (const device of ['camera', 'microphone']) {
    if (['blocked', 'missing', 'error'].includes(r[device])) problems.push(`${device}_${r[device]}`);
  }
  if (r.microphone === 'silent') problems.push('microphone_silent');
  if (n && !problems.includes('no_connection')) {
    if (n.loss_pct > LIMITS.lossPct) problems.push('high_loss');
    if (n.rtt_ms > LIMITS.rttMs) problems.push('high_rtt');
    if (n.jitter_ms > LIMITS.jitterMs) problems.push('high_jitter');
    const kbps = Math.max(n.send_kbps ?? 0, n.available_kbps ?? 0);
    if ((n.send_kbps !== undefined || n.available_kbps !== undefined) && kbps < LIMITS.minKbps) problems.push('low_bitrate');
    if (n.transport === 'tcp' || n.transport === 'turn-tcp' || n.transport === 'turn-tls') problems.push('tcp');
    if (n.candidate_type === 'relay') problems.push('relay');
  }
  if (r.speaker === 'failed') problems.push('speaker_failed');
  let verdict = Verdict.GOOD;
  if (problems.includes('no_connection') || (n?.loss_pct ?? 0) > LIMITS.lossFailPct) verdict = Verdict.WILL_NOT_WORK;
  else if (problems.some((p) => !ADVISORY.has(p))) verdict = Verdict.MAY_BE_POOR;
  return { verdict, problems };
}

/**
 * Runs the whole test on a started LocalMedia. Resolves to the `diagnostics`
 * payload of the wire.
 *
 * @param {object} opts
 * @param {LocalMedia} opts.media
 * @param {AudioMeter} [opts.meter]  a meter already running on the microphone
 * @param {string} [opts.token]
 * @param {string} [opts.speaker]  "played", "failed" or "untested"
 * @param {AbortSignal} [opts.signal]
 * @param {(text: string) => void} [opts.onProgress]
 */
export async function runDiagnostics({ media, meter = null, token = '', speaker = 'untested', signal, onProgress } = {}) {
  const started = Date.now();
  await media.start();
  const ownMeter = meter ?? new AudioMeter();
  if (!meter) ownMeter.start(media.stream?.getAudioTracks()[0]);
  try {
    const network = await echoTest({ stream: media.stream, token, signal, onProgress });
    const result = {
      verdict: Verdict.GOOD,
      camera: deviceStatus(media, 'video'),
      microphone: deviceStatus(media, 'audio'),
      speaker,
      network,
      duration_ms: Math.min(600000, Date.now() - started),
    };
    if (result.microphone === 'ok') {
      result.audio_level = round(clamp(ownMeter.peak, 0, 1), 3);
      if (ownMeter.peak < 0.1) result.microphone = 'silent';
    }
    const { verdict, problems } = assess(result);
    result.verdict = verdict;
    if (problems.length) result.problems = problems;
    result.network = wireNetwork(network);
    return result;
  } finally {
    if (!meter) ownMeter.stop();
  }
}

/** One line for the specialist: "Good · UDP · RTT 23 ms · loss 0% · 1200 kbit/s". */
export function summaryLine(d) {
  const parts = [{ good: 'Good', may_be_poor: 'May be poor', will_not_work: 'Will not work' }[d?.verdict] ?? 'Unknown'];
  const n = d?.network;
  if (n) {
    parts.push(n.transport === 'none' ? 'no connection' : n.transport.toUpperCase());
    if (Number.isFinite(n.rtt_ms)) parts.push(`RTT ${Math.round(n.rtt_ms)} ms`);
    if (Number.isFinite(n.jitter_ms)) parts.push(`jitter ${Math.round(n.jitter_ms)} ms`);
    if (Number.isFinite(n.loss_pct)) parts.push(`loss ${n.loss_pct}%`);
    const kbps = n.send_kbps ?? n.available_kbps;
    if (Number.isFinite(kbps)) parts.push(`${Math.round(kbps)} kbit/s`);
  }
  if (d?.camera && d.camera !== 'ok') parts.push(`camera ${d.camera}`);
  if (d?.microphone && d.microphone !== 'ok') parts.push(`mic ${d.microphone}`);
  return parts.join(' · ');
}

/** The verdict for the customer, with what to do and the figures. */
export function renderResult(container, d) {
  const advice = (d.problems ?? []).map((p) => ADVICE[p]).filter(Boolean);
  const n = d.network ?? {};
  const figure = (label, value) => (value === undefined ? null
    : el('div', { class: 'diag-figure' }, el('dt', { text: label }), el('dd', { text: value })));
  container.replaceChildren(
    el('p', { class: `diag-verdict verdict-${d.verdict}`, text: VERDICT_TEXT[d.verdict], dataset: { testid: 'diag-verdict', verdict: d.verdict } }),
    advice.length ? el('ul', { class: 'diag-advice', dataset: { testid: 'diag-advice' } }, ...advice.map((a) => el('li', { text: a }))) : null,
    el('dl', { class: 'diag-figures', dataset: { testid: 'diag-figures' } },
      figure('Camera', d.camera),
      figure('Microphone', d.microphone),
      figure('Connection', n.transport === 'none' ? 'none' : n.transport?.toUpperCase()),
      figure('Round trip', Number.isFinite(n.rtt_ms) ? `${Math.round(n.rtt_ms)} ms` : undefined),
      figure('Jitter', Number.isFinite(n.jitter_ms) ? `${Math.round(n.jitter_ms)} ms` : undefined),
      figure('Packet loss', Number.isFinite(n.loss_pct) ? `${n.loss_pct}%` : undefined),
      figure('Upload', Number.isFinite(n.send_kbps) ? `${Math.round(n.send_kbps)} kbit/s` : undefined)),
  );
}

// ---------------------------------------------------------------- the page

function initPage() {
  const $ = (id) => document.getElementById(id);
  const media = new LocalMedia();
  const meter = new AudioMeter((level) => { $('diag-level').value = level; });
  let speaker = 'untested';
  let result = null;
  const setState = (state) => { document.body.dataset.state = state; };
  window.assistDebug = Object.freeze({ state: () => document.body.dataset.state ?? '', diagnostics: () => result });

  $('diag-speaker').addEventListener('click', async () => {
    $('diag-speaker').disabled = true;
    speaker = await playTone();
    if (result) result.speaker = speaker;
    $('diag-speaker-status').textContent = speaker === 'played'
      ? 'Did you hear two notes? If not, check your speaker or headphones and the volume.'
      : 'The test sound could not be played.';
    $('diag-speaker').disabled = false;
  });

  $('diag-start').addEventListener('click', async () => {
    $('diag-start').disabled = true;
    setState('running');
    $('diag-result').replaceChildren();
    await media.start();
    $('diag-preview').srcObject = media.stream;
    $('diag-preview').hidden = !media.hasVideo;
    $('diag-camera').textContent = `Camera: ${deviceStatus(media, 'video')}`;
    $('diag-microphone').textContent = `Microphone: ${deviceStatus(media, 'audio')}`;
    meter.start(media.stream?.getAudioTracks()[0]);
    try {
      result = await runDiagnostics({
        media, meter, speaker, onProgress: (text) => { $('diag-progress').textContent = text; },
      });
      $('diag-progress').textContent = '';
      renderResult($('diag-result'), result);
      setState('done');
    } catch (err) {
      $('diag-progress').textContent = `The test could not finish: ${err.message}`;
      setState('error');
    } finally {
      $('diag-start').textContent = 'Test again';
      $('diag-start').disabled = false;
    }
  });
  setState('idle');
}

if (document.body?.classList.contains('page-diagnostics')) initPage();
