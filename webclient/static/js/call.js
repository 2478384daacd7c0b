// One RTCPeerConnection to the SFU with perfect negotiation
// (https://w3c.github.io/webrtc-pc/#perfect-negotiation-example).
// The browser is the polite peer: when its own offer collides with the SFU's,
// setRemoteDescription rolls it back implicitly and the SFU's offer wins.

import { MessageType, candidateFromWire, candidateToWire } from './signal.js';

// How long ICE may sit in "new" with both descriptions set before a restart.
const STUCK_ICE_MS = 4000;
// The longest a colliding SFU offer waits for our first candidate (see #onDescription).
const ROLLBACK_GATHER_WAIT_MS = 3000;

const delay = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** The welcome message's ice_servers → RTCIceServer[]. */
export function toRTCIceServers(list) {
  if (!Array.isArray(list)) return [];
  const out = [];
  for (const s of list) {
    if (!s || (typeof s.urls !== 'string' && !Array.isArray(s.urls))) continue;
    const server = { urls: s.urls };
    if (typeof s.username === 'string') server.username = s.username;
    if (typeof s.credential === 'string') server.credential = s.credential;
    out.push(server);
  }
  return out;
}

/**
 * Gives every header extension one id across the whole SDP (BUNDLE needs
 * that). The first m-section that maps a URI decides its id; later sections
 * follow, and take a free id where theirs is used by another URI.
 */
export function harmonizeExtmaps(sdp) {
  const EXTMAP = /^a=extmap:(\d+)(\/[a-z]+)? (\S+)(.*)$/;
  const lines = sdp.split('\r\n');
  const idOf = new Map(); // uri → id
  const uriOf = new Map(); // id → uri
  for (const line of lines) {
    const m = EXTMAP.exec(line);
    if (!m) continue;
    const id = Number(m[1]);
    if (!idOf.has(m[3]) && !uriOf.has(id)) {
      idOf.set(m[3], id);
      uriOf.set(id, m[3]);
    }
  }
  const freeId = () => {
    for (let id = 1; id <= 255; id++) if (id !== 15 && !uriOf.has(id)) return id;
    return 0;
  };
  return lines.map((line) => {
    const m = EXTMAP.exec(line);
    if (!m) return line;
    let id = idOf.get(m[3]);
    if (id === undefined) {
      id = freeId();
      if (!id) return line;
      idOf.set(m[3], id);
      uriOf.set(id, m[3]);
    }
    return `a=extmap:${id}${m[2] ?? ''} ${m[3]}${m[4]}`;
  }).join('\r\n');
}

/**
 * Call events:
 *  - `stream` {stream}: a new remote MediaStream (a participant's camera/mic)
 *  - `streamremoved` {stream}: its last track went away
 *  - `connectionstate` {state}: the RTCPeerConnection's connectionState
 *  - `failure` {message}: a negotiation step failed (the call may still work)
 */
export class Call extends EventTarget {
  #send;
  #iceServers;
  #stream;
  #polite;
  #pc = null;
  #makingOffer = false;
  #offering = null; // the in-flight setLocalDescription() of our offer
  #gathered = null; // resolves at our first local candidate (or end of gathering)
  #ignoreOffer = false;
  #settingRemoteAnswer = false;
  #pendingCandidates = [];
  #queue = Promise.resolve();
  #remote = new Map(); // stream id → MediaStream
  #closed = false;
  #watchdog = 0;
  #stuckSince = 0;

  /**
   * @param {object} opts
   * @param {(type: string, payload: object) => boolean} opts.send  sends a signaling message
   * @param {Array} [opts.iceServers]  welcome.ice_servers
   * @param {MediaStream|null} [opts.stream]  the local camera/mic
   * @param {boolean} [opts.polite]  true for browsers (the SFU is impolite)
   */
  constructor({ send, iceServers = [], stream = null, polite = true }) {
    super();
    this.#send = send;
    this.#iceServers = toRTCIceServers(iceServers);
    this.#stream = stream;
    this.#polite = polite;
  }

  /** The RTCPeerConnection, or null before start / after close. */
  get pc() {
    return this.#pc;
  }

  get remoteStreams() {
    return [...this.#remote.values()];
  }

  /** Creates the peer connection and adds the local tracks; the first offer follows. */
  start() {
    if (this.#pc || this.#closed) return;
    const pc = new RTCPeerConnection({ iceServers: this.#iceServers, bundlePolicy: 'max-bundle' });
    this.#pc = pc;
    pc.addEventListener('negotiationneeded', () => this.#negotiate());
    let gathered;
    this.#gathered = new Promise((resolve) => { gathered = resolve; });
    pc.addEventListener('icecandidate', ({ candidate }) => {
      gathered();
      // A null candidate (end of gathering) has no wire form; skip it.
      if (candidate && candidate.candidate) this.#send(MessageType.CANDIDATE, candidateToWire(candidate));
    });
    pc.addEventListener('track', (ev) => this.#onTrack(ev));
    pc.addEventListener('connectionstatechange', () => {
      this.#emit('connectionstate', { state: pc.connectionState });
    });
    pc.addEventListener('iceconnectionstatechange', () => {
      // A network change (Wi-Fi → mobile data) breaks the ICE path: ask for
      // new candidates; negotiationneeded sends the ICE-restart offer.
      if (pc.iceConnectionState === 'failed') pc.restartIce();
    });

    // A safety net: ICE that sits in "new" although both descriptions are
    // set will never start by itself; restart it.
    this.#watchdog = setInterval(() => {
      const stuck = pc.signalingState === 'stable' && pc.remoteDescription && pc.iceConnectionState === 'new';
      if (!stuck) {
        this.#stuckSince = 0;
      } else if (!this.#stuckSince) {
        this.#stuckSince = Date.now();
      } else if (Date.now() - this.#stuckSince >= STUCK_ICE_MS) {
        console.warn('assist: ICE did not start; restarting it');
        this.#stuckSince = 0;
        pc.restartIce();
      }
    }, 1000);

    const tracks = this.#stream ? this.#stream.getTracks() : [];
    for (const track of tracks) pc.addTrack(track, this.#stream);
    if (tracks.length === 0) {
      // Nothing to send (no camera, no microphone): still offer, to receive.
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
  }

  /** Handles a `description` message from the SFU. */
  handleDescription(payload) {
    if (!payload || (payload.type !== 'offer' && payload.type !== 'answer') || typeof payload.sdp !== 'string') {
      this.#fail('a description message without a valid type and sdp');
      return;
    }
    this.#enqueue(() => this.#onDescription({ type: payload.type, sdp: payload.sdp }));
  }

  /** Handles a `candidate` message from the SFU. */
  handleCandidate(payload) {
    if (!payload) return;
    const init = candidateFromWire(payload);
    this.#enqueue(async () => {
      const pc = this.#pc;
      if (!pc) return;
      if (!pc.remoteDescription) {
        this.#pendingCandidates.push(init);
        return;
      }
      await this.#addCandidate(init);
    });
  }

  /**
   * Puts a new local track on the connection in place of the old one of the
   * same kind (switching cameras); adds it when there was none.
   */
  async replaceTrack(track, stream) {
    const pc = this.#pc;
    if (!pc) return;
    const sender = pc.getSenders().find((s) => s.track && s.track.kind === track.kind)
      ?? pc.getTransceivers().find((t) => t.sender.track === null && t.receiver.track.kind === track.kind
        && t.direction !== 'recvonly' && t.currentDirection !== 'stopped')?.sender;
    if (sender) {
      await sender.replaceTrack(track);
    } else {
      pc.addTrack(track, stream ?? this.#stream ?? new MediaStream([track]));
    }
  }

  /**
   * Sends an extra track (a shared screen) besides the camera; the
   * negotiationneeded that follows renegotiates through perfect negotiation.
   * Returns the RTCRtpSender (for removeTrack), or null before start.
   */
  addTrack(track, stream) {
    const pc = this.#pc;
    if (!pc) return null;
    return pc.addTrack(track, stream ?? new MediaStream([track]));
  }

  /** Stops sending a track added with addTrack. */
  removeTrack(sender) {
    const pc = this.#pc;
    if (!pc || !sender) return;
    try {
      pc.removeTrack(sender);
    } catch (err) {
      console.warn(`assist: could not remove a track: ${err.message}`);
    }
  }

  /** Sum of framesDecoded over the inbound video streams. */
  async framesDecoded() {
    const pc = this.#pc;
    if (!pc) return 0;
    const stats = await pc.getStats();
    let frames = 0;
    stats.forEach((r) => {
      if (r.type === 'inbound-rtp' && (r.kind ?? r.mediaType) === 'video') frames += r.framesDecoded ?? 0;
    });
    return frames;
  }

  /** Closes the peer connection. The local tracks are the caller's to stop. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#watchdog);
    const pc = this.#pc;
    this.#pc = null;
    this.#pendingCandidates = [];
    if (pc) pc.close();
    for (const stream of this.#remote.values()) this.#emit('streamremoved', { stream });
    this.#remote.clear();
  }

  async #negotiate() {
    const pc = this.#pc;
    if (!pc) return;
    try {
      this.#makingOffer = true;
      try {
        this.#offering = pc.setLocalDescription();
        await this.#offering;
      } catch (err) {
        // After a rollback Chromium can build an offer whose new m-sections
        // reuse header extension ids that the SFU's mapping gave to other
        // extensions; it then rejects its own offer. Give each extension
        // one id across the bundle and try once more.
        if (!/header extension/i.test(err.message)) throw err;
        console.warn(`assist: ${err.message}; retrying with one id per header extension`);
        // If the SFU's offer arrived meanwhile, answering it comes first; negotiationneeded
        // fires again once the connection is back to stable.
        if (pc.signalingState !== 'stable') return;
        const offer = await pc.createOffer();
        if (pc.signalingState !== 'stable') return;
        await pc.setLocalDescription({ type: 'offer', sdp: harmonizeExtmaps(offer.sdp) });
      }
      // An SFU offer may have arrived and rolled ours back meanwhile; then
      // its answer is on its way from #onDescription instead.
      if (pc.signalingState === 'have-local-offer' && pc.localDescription?.type === 'offer') {
        this.#send(MessageType.DESCRIPTION, { type: 'offer', sdp: pc.localDescription.sdp });
      }
    } catch (err) {
      if (!this.#closed) this.#fail(`creating an offer: ${err.message}`);
    } finally {
      this.#makingOffer = false;
      this.#offering = null;
    }
  }

  async #onDescription(desc) {
    const pc = this.#pc;
    if (!pc) return;
    const readyForOffer = !this.#makingOffer
      && (pc.signalingState === 'stable' || this.#settingRemoteAnswer);
    const offerCollision = desc.type === 'offer' && !readyForOffer;
    this.#ignoreOffer = !this.#polite && offerCollision;
    if (this.#ignoreOffer) return;
    if (offerCollision && (this.#offering || pc.signalingState === 'have-local-offer')) {
      // Chromium (156) can stop gathering ICE candidates for good (none,
      // ever; restartIce does not help) when a rollback cuts its first
      // gathering short. So let our own offer settle and its gathering
      // produce a first candidate before the rollback; a few ms usually.
      await this.#offering?.catch(() => {});
      await Promise.race([this.#gathered, delay(ROLLBACK_GATHER_WAIT_MS)]);
      if (this.#closed) return;
    }
    if (desc.type === 'answer' && pc.signalingState !== 'have-local-offer') {
      // An answer to an offer we rolled back: nothing to apply.
      console.warn(`assist: ignoring an answer in signaling state ${pc.signalingState}`);
      return;
    }

    this.#settingRemoteAnswer = desc.type === 'answer';
    try {
      await pc.setRemoteDescription(desc); // rolls back our own offer on a collision
    } finally {
      this.#settingRemoteAnswer = false;
    }
    if (desc.type === 'offer') {
      await pc.setLocalDescription();
      this.#send(MessageType.DESCRIPTION, { type: 'answer', sdp: pc.localDescription.sdp });
    }
    // Candidates that came early go in only now that our answer is set:
    // added between a rollback and the answer they, too, can stall
    // Chromium's gathering.
    const pending = this.#pendingCandidates;
    this.#pendingCandidates = [];
    for (const c of pending) await this.#addCandidate(c);
  }

  async #addCandidate(init) {
    try {
      await this.#pc?.addIceCandidate(init);
    } catch (err) {
      if (!this.#ignoreOffer && !this.#closed) console.warn(`assist: could not add an ICE candidate: ${err.message}`);
    }
  }

  #onTrack({ track, streams }) {
    const list = streams.length > 0 ? streams : [new MediaStream([track])];
    for (const stream of list) {
      if (this.#remote.has(stream.id)) {
        // A second video track of a stream we show already is a shared
        // screen: show it on its own. Other extra tracks play in the
        // stream's element.
        const known = this.#remote.get(stream.id);
        if (track.kind === 'video' && known.getVideoTracks().some((t) => t !== track)) this.#addExtra(stream, track);
        continue;
      }
      this.#remote.set(stream.id, stream);
      const onRemove = () => {
        if (stream.getTracks().length > 0 || this.#remote.get(stream.id) !== stream) return;
        this.#remote.delete(stream.id);
        stream.removeEventListener('removetrack', onRemove);
        this.#emit('streamremoved', { stream });
      };
      stream.addEventListener('removetrack', onRemove);
      if (streams.length === 0) track.addEventListener('ended', () => {
        stream.removeTrack(track);
        onRemove();
      });
      this.#emit('stream', { stream });
    }
  }

  // Shows one more video track of a participant's stream as its own stream,
  // until the track leaves the stream or ends.
  #addExtra(stream, track) {
    const key = `${stream.id}/${track.id}`;
    if (this.#remote.has(key)) return;
    const extra = new MediaStream([track]);
    this.#remote.set(key, extra);
    const onRemove = (ev) => {
      if (ev?.track && ev.track !== track) return;
      if (this.#remote.get(key) !== extra) return;
      this.#remote.delete(key);
      stream.removeEventListener('removetrack', onRemove);
      track.removeEventListener('ended', onRemove);
      this.#emit('streamremoved', { stream: extra });
    };
    stream.addEventListener('removetrack', onRemove);
    track.addEventListener('ended', onRemove);
    this.#emit('stream', { stream: extra });
  }

  #enqueue(step) {
    this.#queue = this.#queue.then(step).catch((err) => {
      if (!this.#closed) this.#fail(err.message ?? String(err));
    });
  }

  #fail(message) {
    console.error(`assist: negotiation: ${message}`);
    this.#emit('failure', { message });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
