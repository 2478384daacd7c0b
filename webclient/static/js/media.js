// The local camera and microphone: getUserMedia with fallbacks, mute and
// camera toggles, and switching between the front and back cameras (the
// customer often wants to show the specialist something).

const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
const VIDEO = {
  facingMode: 'user',
  width: { ideal: 1280 },
  height: { ideal: 720 },
  frameRate: { ideal: 30, max: 30 },
};

/** A sentence for the user about why the camera or microphone is unavailable. */
export function describeMediaError(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
      return 'Camera and microphone access is blocked. Allow it in your browser settings, then reload the page.';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
      return 'No camera or microphone was found. You can still join and see and hear the other side.';
    case 'NotReadableError':
    case 'TrackStartError':
      return 'Your camera or microphone is in use by another app. Close it, then reload the page.';
    case 'OverconstrainedError':
      return 'Your camera does not support the requested settings.';
    case 'SecurityError':
    case 'InsecureContextError':
      return 'Camera access needs a secure (https) connection.';
    default:
      return 'The camera or microphone could not be started.';
  }
}

/**
 * Events: `change` after the stream or a track changes; `trackreplaced`
 * {track, oldTrack} when switchCamera put a new video track in the stream.
 */
export class LocalMedia extends EventTarget {
  /** @type {MediaStream|null} */
  stream = null;
  /** @type {Error|null} the last getUserMedia failure */
  error = null;
  #facing = 'user';
  #starting = null;
  #videoEnabled = true;
  #audioEnabled = true;
  #stopped = false;

  get hasAudio() {
    return !!this.stream && this.stream.getAudioTracks().length > 0;
  }

  get hasVideo() {
    return !!this.stream && this.stream.getVideoTracks().length > 0;
  }

  get audioEnabled() {
    return this.#audioEnabled;
  }

  get videoEnabled() {
    return this.#videoEnabled;
  }

  /** True when the current camera faces the user (the self-view is mirrored). */
  get facingUser() {
    return this.#facing === 'user';
  }

  /**
   * Asks for the camera and microphone once; later calls share the result.
   * Never rejects: on failure the stream is null or partial and `error` says why.
   */
  start() {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start() {
    if (!navigator.mediaDevices?.getUserMedia) {
      this.error = Object.assign(new Error('getUserMedia is unavailable'), { name: 'InsecureContextError' });
      this.#emit('change');
      return null;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: AUDIO, video: VIDEO });
    } catch (err) {
      this.error = err;
      if (err.name !== 'NotAllowedError' && err.name !== 'SecurityError') {
        // One of the two devices may still work on its own.
        for (const constraints of [{ audio: AUDIO }, { video: VIDEO }]) {
          try {
            this.stream = await navigator.mediaDevices.getUserMedia(constraints);
            break;
          } catch {
            // try the next
          }
        }
      }
    }
    // stop() may have come while the browser was still asking: the camera
    // must not come on after the call is over.
    if (this.#stopped) this.stop();
    this.#apply();
    this.#emit('change');
    return this.stream;
  }

  setAudioEnabled(on) {
    this.#audioEnabled = on;
    this.#apply();
    this.#emit('change');
  }

  setVideoEnabled(on) {
    this.#videoEnabled = on;
    this.#apply();
    this.#emit('change');
  }

  /** Whether there is more than one camera to switch between. */
  async canSwitchCamera() {
    if (!this.hasVideo || !navigator.mediaDevices?.enumerateDevices) return false;
    const devices = await navigator.mediaDevices.enumerateDevices();
    return devices.filter((d) => d.kind === 'videoinput').length > 1;
  }

  /** Switches to the next camera; returns the new video track (or null). */
  async switchCamera() {
    if (!this.stream || this.#stopped) return null;
    const old = this.stream.getVideoTracks()[0] ?? null;
    const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
    if (cameras.length < 2) return null;
    const currentId = old?.getSettings().deviceId;
    const next = cameras[(cameras.findIndex((c) => c.deviceId === currentId) + 1) % cameras.length];
    // Phones cannot open two cameras at once: release the old one first.
    if (old) old.stop();
    let fresh;
    try {
      fresh = await navigator.mediaDevices.getUserMedia({
        video: { ...VIDEO, facingMode: undefined, deviceId: { exact: next.deviceId } },
      });
    } catch (err) {
      // Get any camera back rather than none.
      fresh = await navigator.mediaDevices.getUserMedia({ video: VIDEO });
      console.warn(`assist: switching cameras failed: ${err.message}`);
    }
    const track = fresh.getVideoTracks()[0];
    if (old) this.stream.removeTrack(old);
    this.stream.addTrack(track);
    const facing = track.getSettings().facingMode;
    this.#facing = facing === 'environment' ? 'environment' : (facing || (this.#facing === 'user' ? 'environment' : 'user'));
    this.#apply();
    this.#emit('trackreplaced', { track, oldTrack: old });
    this.#emit('change');
    return track;
  }

  /** The video track now sent, or null. */
  get videoTrack() {
    return this.stream?.getVideoTracks()[0] ?? null;
  }

  /** "user", "environment" or "" when the camera does not say. */
  get facingMode() {
    return this.videoTrack?.getSettings().facingMode ?? '';
  }

  /**
   * Re-acquires the camera facing the other way (the specialist's "flip");
   * resolves to the new track, rejects when there is no such camera.
   */
  async flipCamera() {
    if (!this.stream || this.#stopped) throw new Error('the camera is off');
    const old = this.videoTrack;
    const want = this.#facing === 'user' ? 'environment' : 'user';
    // Phones cannot open two cameras at once: release the old one first.
    if (old) old.stop();
    let fresh;
    try {
      fresh = await navigator.mediaDevices.getUserMedia({ video: { ...VIDEO, facingMode: { exact: want } } });
    } catch (err) {
      // Get the camera back rather than none, and report the failure.
      const back = await navigator.mediaDevices.getUserMedia({ video: { ...VIDEO, facingMode: this.#facing } });
      this.#swapVideo(old, back.getVideoTracks()[0]);
      throw err;
    }
    const track = fresh.getVideoTracks()[0];
    this.#facing = want;
    this.#swapVideo(old, track);
    return track;
  }

  #swapVideo(old, track) {
    if (old) this.stream.removeTrack(old);
    this.stream.addTrack(track);
    this.#apply();
    this.#emit('trackreplaced', { track, oldTrack: old });
    this.#emit('change');
  }

  /** Stops the camera and microphone (the camera light goes off). */
  stop() {
    this.#stopped = true;
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
  }

  #apply() {
    if (!this.stream) return;
    for (const t of this.stream.getAudioTracks()) t.enabled = this.#audioEnabled;
    for (const t of this.stream.getVideoTracks()) t.enabled = this.#videoEnabled;
  }

  #emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
