// A participant's time in a session: the signaling socket, the join, the
// waiting room, the call, reconnecting after a dropped connection, and the
// end. Both pages use it; they only draw what it reports.

import { Call } from './call.js';
import { MessageType, SignalClient, signalURL } from './signal.js';

const HANDLED = new Set([
  MessageType.WELCOME, MessageType.WAITING, MessageType.ADMITTED, MessageType.DENIED,
  MessageType.QUEUE, MessageType.PARTICIPANTS, MessageType.DESCRIPTION, MessageType.CANDIDATE,
  MessageType.SESSION_ENDED, MessageType.ERROR,
]);

// Backoff between reconnection attempts; after the last one we give up.
// Together they cover about a minute; the server keeps a dropped
// participant's place (shown to the others as "reconnecting") for 30 s and
// lets them back in without a new admission after that too.
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000];

// The server closed the socket because the same link joined on a newer
// connection (another tab, another device): that one has the call now, and
// reconnecting here would take it back and forth for ever.
export const CLOSE_REPLACED = 4001;

// Join errors worth another attempt: the server could not answer just now
// (its message bus restarting, say), not a verdict on the link.
const TRANSIENT_ERRORS = new Set(['internal', 'rate_limited']);

/**
 * Session events (CustomEvent, payload in `detail`):
 *  - `state` {state, reason?, message?}: connecting | waiting | in-call |
 *    reconnecting | denied | ended | error
 *  - `welcome`, `waiting`, `queue`, `participants`: the server's payloads
 *  - `stream` / `streamremoved` {stream}: remote media
 *  - `connectionstate` {state}: the peer connection's state
 *  - `notice` {message, code?}: something to tell the user that is not fatal
 *  - `message` {type, payload}: any other server message (the in-session tools)
 */
export class Session extends EventTarget {
  #join;
  #media;
  #url;
  #signal = null;
  #call = null;
  #starting = false; // between welcome/admitted and the call's creation
  #early = []; // description/candidate messages that came while #starting
  #welcome = null;
  #state = 'idle';
  #finished = false;
  #welcomedOnce = false;
  #attempt = 0;
  #retryTimer = 0;
  #endTimer = 0;
  #ending = false;
  #abort = new AbortController();

  /**
   * @param {object} opts
   * @param {{token: string, session_id?: string, name?: string}} opts.join  the join payload
   * @param {import('./media.js').LocalMedia} opts.media  the local camera/mic
   * @param {string} [opts.url]  the signaling URL (default: this host's /v1/signal)
   */
  constructor({ join, media, url = signalURL() }) {
    super();
    this.#join = join;
    this.#media = media;
    this.#url = url;
    media.addEventListener('trackreplaced', ({ detail }) => {
      this.#call?.replaceTrack(detail.track, media.stream).catch((err) => {
        this.#notice(`The new camera could not be sent: ${err.message}`);
      });
    }, { signal: this.#abort.signal });
    // Offline: the socket is as good as dead, though the browser may take
    // long to notice; say so now and start reconnecting.
    window.addEventListener('offline', () => {
      const signal = this.#signal;
      if (!signal || this.#finished || this.#ending) return;
      this.#lost('the network went offline');
      signal.close(4000, 'offline');
    }, { signal: this.#abort.signal });
    // Back online: retry now rather than at the end of the backoff.
    window.addEventListener('online', () => {
      if (this.#retryTimer && !this.#finished) {
        clearTimeout(this.#retryTimer);
        this.#retryTimer = 0;
        this.#connect();
      }
    }, { signal: this.#abort.signal });
  }

  get state() { return this.#state; }
  get call() { return this.#call; }
  get participantId() { return this.#welcome?.participant_id ?? null; }
  get sessionId() { return this.#welcome?.session_id ?? this.#join.session_id ?? null; }
  get role() { return this.#welcome?.role ?? null; }
  get finished() { return this.#finished; }

  /** Connects and joins. */
  start() {
    if (this.#signal || this.#finished) return;
    this.#setState('connecting');
    this.#connect();
  }

  /** Hangs up: tells the server, then closes everything. */
  leave() {
    if (this.#finished) return;
    this.#signal?.send(MessageType.LEAVE, {});
    this.#finish('ended', { reason: 'left' });
  }

  /**
   * Goes away without hanging up (the page is unloading: a reload, maybe):
   * the server keeps our place as "reconnecting" for a while, so a page that
   * comes back with the same link resumes where it was.
   */
  disconnect() {
    if (this.#finished) return;
    const signal = this.#signal;
    this.#signal = null;
    signal?.close(1001, 'going away');
    this.#finish('ended', { reason: 'disconnected' });
  }

  /** Ends the session for everyone (specialists only). */
  end() {
    if (this.#finished || !this.#signal?.send(MessageType.END, {})) return false;
    this.#ending = true;
    // The server answers with session_ended and closes; don't wait forever.
    this.#endTimer = setTimeout(() => this.#finish('ended', { reason: 'ended' }), 5000);
    return true;
  }

  /** Sends any client message (the in-session tools); false when not connected. */
  send(type, payload = {}) {
    return !!this.#signal?.send(type, payload);
  }

  admit(participantId) {
    return !!this.#signal?.send(MessageType.ADMIT, { participant_id: participantId });
  }

  deny(participantId, reason = '') {
    const payload = { participant_id: participantId };
    if (reason) payload.reason = reason;
    return !!this.#signal?.send(MessageType.DENY, payload);
  }

  async #connect() {
    this.#retryTimer = 0;
    const signal = new SignalClient(this.#url);
    this.#signal = signal;
    this.#listen(signal);
    try {
      await signal.open();
    } catch (err) {
      if (this.#signal === signal) this.#lost(err.message);
      return;
    }
    if (this.#signal !== signal || this.#finished) {
      signal.close();
      return;
    }
    const join = { token: this.#join.token };
    if (this.#join.session_id) join.session_id = this.#join.session_id;
    if (this.#join.name) join.name = this.#join.name;
    if (this.#join.language) join.language = this.#join.language;
    signal.send(MessageType.JOIN, join);
  }

  #listen(signal) {
    const on = (type, fn) => signal.addEventListener(type, (ev) => {
      if (this.#signal === signal && !this.#finished) fn(ev.detail);
    });
    // Types this class does not handle (the in-session tools: chat,
    // annotation, history, …) are passed on for the page to use.
    on('message', ({ type, payload }) => {
      if (!HANDLED.has(type)) this.#emit('message', { type, payload });
    });
    on(MessageType.WELCOME, (p) => {
      this.#welcome = p;
      this.#welcomedOnce = true;
      this.#attempt = 0;
      this.#emit('welcome', p);
      if (p.session_state === 'ended') {
        this.#finish('ended', { reason: 'ended' });
      } else if (p.role === 'specialist') {
        this.#startCall(); // specialists publish right away
      }
    });
    on(MessageType.WAITING, (p) => {
      this.#stopCall(); // moved (back) to the waiting room
      this.#setState('waiting', { position: p.position });
      this.#emit('waiting', p);
    });
    on(MessageType.ADMITTED, () => this.#startCall());
    on(MessageType.DENIED, (p) => this.#finish('denied', { reason: p.reason ?? '' }));
    on(MessageType.SESSION_ENDED, (p) => this.#finish('ended', { reason: p.reason ?? '' }));
    on(MessageType.QUEUE, (p) => this.#emit('queue', { waiting: Array.isArray(p.waiting) ? p.waiting : [] }));
    on(MessageType.PARTICIPANTS, (p) => this.#emit('participants', {
      participants: Array.isArray(p.participants) ? p.participants : [],
    }));
    // The SFU may offer while the camera is still starting: keep those
    // messages for the call rather than drop them (dropping an offer would
    // leave both sides waiting for each other).
    on(MessageType.DESCRIPTION, (p) => {
      if (this.#call) this.#call.handleDescription(p);
      else if (this.#starting) this.#early.push([MessageType.DESCRIPTION, p]);
      else console.warn('assist: a description arrived outside a call; ignored');
    });
    on(MessageType.CANDIDATE, (p) => {
      if (this.#call) this.#call.handleCandidate(p);
      else if (this.#starting) this.#early.push([MessageType.CANDIDATE, p]);
    });
    on(MessageType.ERROR, (p) => {
      const message = typeof p.message === 'string' && p.message ? p.message : 'The server reported an error.';
      if (!this.#welcome && TRANSIENT_ERRORS.has(p.code)) {
        // The server could not take the join just now: try again.
        const signal = this.#signal;
        this.#lost(`the join failed (${p.code}): ${message}`);
        signal?.close();
      } else if (!this.#welcome) {
        // The join itself was refused (bad or expired link, ended session…).
        this.#finish('error', { code: p.code, message });
      } else {
        this.#notice(message, p.code);
      }
    });
    on('close', (p) => {
      if (this.#ending) this.#finish('ended', { reason: 'ended' });
      else if (p.code === CLOSE_REPLACED) {
        this.#finish('error', {
          code: 'replaced',
          message: 'This session was opened in another window or on another device, so it was closed here.',
        });
      } else this.#lost(`the connection closed (code ${p.code})`);
    });
  }

  #startCall() {
    if (this.#call || this.#starting) return;
    const signal = this.#signal;
    this.#starting = true;
    this.#early = [];
    this.#setState('in-call');
    const start = async () => {
      const stream = await this.#media.start();
      if (this.#finished || this.#signal !== signal || this.#call || !this.#starting) return;
      this.#starting = false;
      if (this.#media.error) this.#notice(`${describe(this.#media.error)}`);
      const call = new Call({
        send: (type, payload) => signal.send(type, payload),
        iceServers: this.#welcome?.ice_servers ?? [],
        stream,
      });
      this.#call = call;
      call.addEventListener('stream', (ev) => this.#emit('stream', ev.detail));
      call.addEventListener('streamremoved', (ev) => this.#emit('streamremoved', ev.detail));
      call.addEventListener('connectionstate', (ev) => this.#emit('connectionstate', ev.detail));
      call.addEventListener('failure', () => this.#notice('There was a problem with the video connection.'));
      call.start();
      const early = this.#early;
      this.#early = [];
      for (const [type, p] of early) {
        if (type === MessageType.DESCRIPTION) call.handleDescription(p);
        else call.handleCandidate(p);
      }
    };
    start().catch((err) => this.#notice(`The call could not start: ${err.message}`));
  }

  #stopCall() {
    const call = this.#call;
    this.#call = null;
    this.#starting = false;
    this.#early = [];
    call?.close();
  }

  // The socket dropped: try again with backoff, or give up.
  #lost(why) {
    if (this.#finished) return;
    this.#stopCall();
    this.#signal = null;
    this.#welcome = null;
    if (this.#attempt >= RETRY_DELAYS_MS.length) {
      this.#finish('error', { message: 'The connection to the server was lost. Check your network, then try again.' });
      return;
    }
    const delay = RETRY_DELAYS_MS[this.#attempt++];
    console.warn(`assist: ${why}; reconnecting in ${delay} ms`);
    this.#setState(this.#welcomedOnce ? 'reconnecting' : 'connecting');
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #finish(state, detail = {}) {
    if (this.#finished) return;
    this.#finished = true;
    this.#abort.abort();
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#endTimer);
    this.#stopCall();
    const signal = this.#signal;
    this.#signal = null;
    signal?.close();
    this.#setState(state, detail);
  }

  #setState(state, detail = {}) {
    this.#state = state;
    this.#emit('state', { state, ...detail });
  }

  #notice(message, code) {
    this.#emit('notice', { message, code });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function describe(err) {
  return err?.name === 'NotAllowedError'
    ? 'Your camera and microphone are blocked, so the other side cannot see or hear you.'
    : 'Your camera or microphone is not available, so the other side may not see or hear you.';
}
