// Call quality from the page's side: every ten seconds while in the call, the
// page reads RTCPeerConnection.getStats(), turns two readings into figures over
// the interval (round trip, jitter, loss both ways, bitrates, frame rate) and
// sends them as a `stats` message. The server keeps them with the session's
// quality samples; nobody else sees them.

export const STATS_INTERVAL_MS = 10000;

/** Totals of one getStats() reading. */
function readReport(report) {
  const r = {
    at: performance.now(), rtt: NaN, jitter: [], fps: NaN, remoteLoss: [], remoteRtt: [],
    bytesIn: 0, bytesOut: 0, packetsIn: 0, lost: 0, inbound: false, outbound: false,
  };
  let selectedPair = '';
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) selectedPair = s.selectedCandidatePairId;
  });
  report.forEach((s) => {
    switch (s.type) {
      case 'candidate-pair':
        if ((selectedPair ? s.id === selectedPair : s.nominated && s.state === 'succeeded')
          && Number.isFinite(s.currentRoundTripTime)) r.rtt = s.currentRoundTripTime * 1000;
        break;
      case 'inbound-rtp':
        r.inbound = true;
        r.bytesIn += s.bytesReceived || 0;
        r.packetsIn += s.packetsReceived || 0;
        r.lost += Math.max(0, s.packetsLost || 0);
        if (Number.isFinite(s.jitter)) r.jitter.push(s.jitter * 1000);
        if (s.kind === 'video' && Number.isFinite(s.framesPerSecond)) r.fps = Math.max(Number.isNaN(r.fps) ? 0 : r.fps, s.framesPerSecond);
        break;
      case 'outbound-rtp':
        r.outbound = true;
        r.bytesOut += (s.bytesSent || 0) + (s.headerBytesSent || 0);
        break;
      case 'remote-inbound-rtp':
        if (Number.isFinite(s.fractionLost)) r.remoteLoss.push(s.fractionLost * 100);
        if (Number.isFinite(s.roundTripTime)) r.remoteRtt.push(s.roundTripTime * 1000);
        break;
      default:
        break;
    }
  });
  return r;
}

const mean = (list) => (list.length ? list.reduce((a, b) => a + b, 0) / list.length : NaN);
const clamp = (v, hi) => Math.min(hi, Math.max(0, v));
const round = (v) => Math.round(v * 100) / 100;

/** The `stats` payload between two readings, or null when there is nothing to say. */
export function statsBetween(prev, cur) {
  const ms = cur.at - prev.at;
  if (!(ms >= 1000)) return null;
  const out = { interval_ms: Math.min(600000, Math.round(ms)) };
  const put = (name, v, hi) => { if (Number.isFinite(v)) out[name] = round(clamp(v, hi)); };
  put('rtt_ms', Number.isFinite(cur.rtt) ? cur.rtt : mean(cur.remoteRtt), 60000);
  put('jitter_ms', mean(cur.jitter), 60000);
  if (cur.inbound && prev.inbound) {
    const got = cur.packetsIn - prev.packetsIn;
    const lost = cur.lost - prev.lost;
    if (got + lost > 0) put('loss_pct', (100 * Math.max(0, lost)) / (got + Math.max(0, lost)), 100);
    put('receive_kbps', ((cur.bytesIn - prev.bytesIn) * 8) / ms, 1000000);
  }
  if (cur.outbound && prev.outbound) put('send_kbps', ((cur.bytesOut - prev.bytesOut) * 8) / ms, 1000000);
  put('send_loss_pct', mean(cur.remoteLoss), 100);
  put('frame_rate', cur.fps, 240);
  return Object.keys(out).length > 1 ? out : null;
}

/**
 * Sends the page's call quality every intervalMs while the session is in the
 * call. Returns a function that stops it; it also stops when the session ends.
 */
export function startStats(session, { intervalMs = STATS_INTERVAL_MS } = {}) {
  let prev = null;
  let pc = null;
  let busy = false;
  const tick = async () => {
    const call = session.state === 'in-call' ? session.call : null;
    const current = call?.pc ?? null;
    if (!current || current.connectionState === 'closed') {
      prev = null;
      return;
    }
    if (current !== pc) { // a new connection: start over
      pc = current;
      prev = null;
    }
    if (busy) return;
    busy = true;
    try {
      const cur = readReport(await current.getStats());
      const payload = prev ? statsBetween(prev, cur) : null;
      prev = cur;
      if (payload) session.send('stats', payload);
    } catch {
      prev = null; // the connection went away while reading
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(tick, intervalMs);
  const onState = ({ detail }) => {
    if (['ended', 'denied', 'error', 'left'].includes(detail.state)) stop();
    else if (detail.state === 'in-call') setTimeout(tick, 1000); // a first reading early on
  };
  function stop() {
    clearInterval(timer);
    session.removeEventListener('state', onState);
  }
  session.addEventListener('state', onState);
  return stop;
}
