// Emergencies. In the console: a button flags the session (the `emergency`
// message), a banner shows it and the customer's latest location. On the
// customer page: while flagged, the location is shared (the browser asks the
// customer to allow it) with watchPosition, at most every few seconds and at
// least every ~10 s, and a banner says so.

import { $, el, notify } from './ui.js';

const REFRESH_MS = 10000; // resend the latest position at least this often
const MIN_GAP_MS = 2000; // and on movement no more often than this
const MOVED_METRES = 20;

function distance(a, b) {
  const r = 6371000;
  const rad = (d) => (d * Math.PI) / 180;
  const dLat = rad(b.latitude - a.latitude);
  const dLon = rad(b.longitude - a.longitude);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.latitude)) * Math.cos(rad(b.latitude)) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}

function mapLink(lat, lon) {
  const a = lat.toFixed(6);
  const o = lon.toFixed(6);
  return el('a', {
    href: `https://www.openstreetmap.org/?mlat=${a}&mlon=${o}#map=17/${a}/${o}`,
    target: '_blank',
    rel: 'noopener noreferrer',
    text: 'Open map',
    'data-testid': 'emergency-map',
  });
}

/** The console's side: the flag button and the banner with the latest location. */
export class EmergencyConsole {
  #send;
  #active = false;

  /** @param {{send: (type: string, payload: object) => boolean}} opts */
  constructor({ send }) {
    this.#send = send;
    $('emergency-button')?.addEventListener('click', () => {
      if (!this.#send('emergency', { active: !this.#active })) notify('Not connected; try again in a moment.');
    });
  }

  reset() {
    this.#active = false;
    this.#render();
    const loc = $('emergency-location');
    if (loc) loc.replaceChildren();
  }

  /** An `emergency` message, live or from history. */
  flag(payload) {
    this.#active = !!payload.active;
    this.#render(payload.reason);
  }

  /** A `geolocation` message: shown in the banner while flagged. */
  location(payload) {
    const box = $('emergency-location');
    if (!box || payload.declined) {
      if (box && payload.declined && this.#active) box.textContent = 'The customer did not share their location.';
      return;
    }
    const lat = Number(payload.latitude);
    const lon = Number(payload.longitude);
    if (!Number.isFinite(lat) || !Number.isFinite(lon)) return;
    const at = payload.time ? new Date(payload.time).toLocaleTimeString() : '';
    box.dataset.latitude = String(lat);
    box.dataset.longitude = String(lon);
    box.replaceChildren(`Latest location: ${lat.toFixed(5)}, ${lon.toFixed(5)} (±${Math.round(Number(payload.accuracy) || 0)} m)${at ? ` at ${at}` : ''} `, mapLink(lat, lon));
  }

  #render(reason = '') {
    const banner = $('emergency-banner');
    const button = $('emergency-button');
    if (banner) {
      banner.hidden = !this.#active;
      $('emergency-reason').textContent = this.#active ? `Emergency${reason ? `: ${reason}` : ''}. The customer's location is being shared with dispatch.` : '';
    }
    if (button) {
      button.setAttribute('aria-pressed', String(this.#active));
      button.textContent = this.#active ? 'End emergency' : 'Emergency';
    }
  }
}

/** The customer's side: shares the location while the session is flagged. */
export class EmergencyShare {
  #send;
  #watch = null;
  #timer = 0;
  #last = null; // the latest position {latitude, longitude, accuracy, timestamp}
  #sent = null; // the last one sent, and when
  #sentAt = 0;

  /** @param {{send: (type: string, payload: object) => boolean}} opts */
  constructor({ send }) {
    this.#send = send;
    $('emergency-share-stop')?.addEventListener('click', () => {
      this.stop();
      this.#send('geolocation', { declined: true, reason: 'The customer stopped sharing their location.' });
    });
  }

  get active() {
    return this.#watch !== null;
  }

  /** An `emergency` message: start or stop sharing. */
  apply(payload, live) {
    if (payload.active) this.start(live);
    else this.stop();
  }

  start(live = true) {
    if (this.#watch !== null) return;
    const banner = $('emergency-share');
    if (!navigator.geolocation) {
      this.#send('geolocation', { declined: true, reason: 'Location is not available on this device.' });
      return;
    }
    if (banner) banner.hidden = false;
    if (live) notify('The specialist flagged an emergency. Your location is shared with them while it lasts.', { kind: 'warning', timeout: 10000 });
    this.#watch = navigator.geolocation.watchPosition((pos) => this.#position(pos), (err) => {
      if (err.code === 1) {
        this.#send('geolocation', { declined: true, reason: 'The customer did not allow it.' });
        this.stop();
      }
    }, { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 });
    // Every ~10 s even when the watch is quiet: a fresh reading, else the last one again.
    this.#timer = setInterval(() => {
      if (Date.now() - this.#sentAt < REFRESH_MS) return;
      navigator.geolocation.getCurrentPosition((pos) => {
        if (this.#watch !== null) this.#position(pos);
      }, () => {
        if (this.#watch !== null && this.#last) this.#share(this.#last);
      }, { enableHighAccuracy: true, maximumAge: 0, timeout: 8000 });
    }, 2000);
  }

  stop() {
    if (this.#watch !== null) navigator.geolocation.clearWatch(this.#watch);
    this.#watch = null;
    clearInterval(this.#timer);
    this.#timer = 0;
    this.#last = null;
    const banner = $('emergency-share');
    if (banner) banner.hidden = true;
  }

  #position(pos) {
    this.#last = {
      latitude: pos.coords.latitude,
      longitude: pos.coords.longitude,
      accuracy: Math.max(0, pos.coords.accuracy || 0),
      timestamp: Math.round(pos.timestamp || Date.now()),
    };
    const gap = Date.now() - this.#sentAt;
    if (!this.#sent || gap >= REFRESH_MS || (gap >= MIN_GAP_MS && distance(this.#sent, this.#last) >= MOVED_METRES)) {
      this.#share(this.#last);
    }
  }

  #share(p) {
    if (this.#send('geolocation', p)) {
      this.#sent = p;
      this.#sentAt = Date.now();
    }
  }
}
