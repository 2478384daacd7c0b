// The signaling socket (/v1/signal): one JSON text frame per message,
// {"type": "...", "payload": {...}}, as docs/design.md describes.

/** Message types, both directions. */
export const MessageType = Object.freeze({
  // client → server
  JOIN: 'join',
  ADMIT: 'admit',
  DENY: 'deny',
  END: 'end',
  LEAVE: 'leave',
  // both ways
  DESCRIPTION: 'description',
  CANDIDATE: 'candidate',
  // server → client
  WELCOME: 'welcome',
  WAITING: 'waiting',
  ADMITTED: 'admitted',
  DENIED: 'denied',
  QUEUE: 'queue',
  PARTICIPANTS: 'participants',
  SESSION_ENDED: 'session_ended',
  ERROR: 'error',
});

const SERVER_TYPES = new Set([
  MessageType.WELCOME, MessageType.WAITING, MessageType.ADMITTED, MessageType.DENIED,
  MessageType.QUEUE, MessageType.PARTICIPANTS, MessageType.DESCRIPTION,
  MessageType.CANDIDATE, MessageType.SESSION_ENDED, MessageType.ERROR,
]);

/** The largest frame the server accepts. */
export const MAX_FRAME_BYTES = 64 * 1024;

/** The signaling URL on the page's own host. */
export function signalURL(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/v1/signal`;
}

/**
 * RTCIceCandidate → the wire's candidate payload
 * {candidate, sdp_mid?, sdp_mline_index?, username_fragment?}.
 */
export function candidateToWire(c) {
  const out = { candidate: c.candidate };
  if (c.sdpMid != null) out.sdp_mid = c.sdpMid;
  if (c.sdpMLineIndex != null) out.sdp_mline_index = c.sdpMLineIndex;
  if (c.usernameFragment != null) out.username_fragment = c.usernameFragment;
  return out;
}

/** The wire's candidate payload → RTCIceCandidateInit. */
export function candidateFromWire(p) {
  const init = { candidate: typeof p.candidate === 'string' ? p.candidate : '' };
  if (p.sdp_mid != null) init.sdpMid = p.sdp_mid;
  if (p.sdp_mline_index != null) init.sdpMLineIndex = p.sdp_mline_index;
  if (p.username_fragment != null) init.usernameFragment = p.username_fragment;
  if (init.sdpMid == null && init.sdpMLineIndex == null) init.sdpMLineIndex = 0;
  return init;
}

/**
 * One WebSocket to the signaling server. Each incoming message is dispatched
 * as `message` {type, payload}, and a core server message (welcome, waiting,
 * …, error) also as an event named by its type with the payload as `detail`;
 * `close` carries {code, reason, wasClean, byUs}.
 */
export class SignalClient extends EventTarget {
  #url;
  #ws = null;
  #closedByUs = false;

  constructor(url = signalURL()) {
    super();
    this.#url = url;
  }

  get isOpen() {
    return this.#ws !== null && this.#ws.readyState === WebSocket.OPEN;
  }

  /** Opens the socket; resolves once it is open, rejects if it never opens. */
  open() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.#url);
      } catch (err) {
        reject(err);
        return;
      }
      this.#ws = ws;
      let opened = false;
      ws.addEventListener('open', () => {
        opened = true;
        resolve();
      });
      ws.addEventListener('message', (ev) => this.#onMessage(ev));
      ws.addEventListener('close', (ev) => {
        if (!opened) {
          reject(new Error(`could not connect to the server (code ${ev.code})`));
          return;
        }
        this.dispatchEvent(new CustomEvent('close', {
          detail: { code: ev.code, reason: ev.reason, wasClean: ev.wasClean, byUs: this.#closedByUs },
        }));
      });
    });
  }

  /** Sends one message. Returns false if the socket is not open. */
  send(type, payload = {}) {
    if (!this.isOpen) return false;
    const frame = JSON.stringify({ type, payload });
    if (frame.length > MAX_FRAME_BYTES) {
      console.warn(`assist: not sending a ${type} message of ${frame.length} bytes (limit ${MAX_FRAME_BYTES})`);
      return false;
    }
    this.#ws.send(frame);
    return true;
  }

  /** Closes the socket (queued messages are sent first). */
  close(code = 1000, reason = '') {
    this.#closedByUs = true;
    if (this.#ws && this.#ws.readyState <= WebSocket.OPEN) this.#ws.close(code, reason);
  }

  #onMessage(ev) {
    if (typeof ev.data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      console.warn('assist: ignoring a signaling frame that is not JSON');
      return;
    }
    if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') {
      console.warn('assist: ignoring a signaling frame without a type');
      return;
    }
    const payload = msg.payload !== null && typeof msg.payload === 'object' ? msg.payload : {};
    // Every message, known or not (the in-session tools add types), goes
    // out as `message`; the core types also under their own name. Other
    // names are never dispatched, so a frame typed "close" cannot pose as
    // the socket closing.
    this.dispatchEvent(new CustomEvent('message', { detail: { type: msg.type, payload } }));
    if (SERVER_TYPES.has(msg.type)) this.dispatchEvent(new CustomEvent(msg.type, { detail: payload }));
  }
}
