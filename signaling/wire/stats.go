package wire

import (
	"errors"
	"fmt"
)

// TypeStats carries a page's view of its own call quality, from
// RTCPeerConnection.getStats(), about every ten seconds while it is in the call. The server
// keeps it with the session's quality samples; nobody else receives it.
const TypeStats Type = "stats"

// Bounds of the figures a page may report.
const (
	maxStatsRTTMs     = 60_000
	maxStatsJitterMs  = 60_000
	maxStatsKbps      = 1_000_000
	maxStatsFrameRate = 240
)

// StatsSend is what a page measured over the last interval. Every figure is optional: a
// browser reports what it can (no video, no frame rate; no RTCP yet, no round trip).
//
//   - RTTMs: the round trip to the server (the selected ICE pair's current round trip).
//   - JitterMs, LossPct: of what the page receives (inbound-rtp, loss over the interval).
//   - SendLossPct: of what the page sends, as the server reported it (remote-inbound-rtp).
//   - SendKbps, ReceiveKbps: media bitrates over the interval.
//   - FrameRate: frames per second of the video the page receives (the best one).
type StatsSend struct {
	RTTMs       *float64 `json:"rtt_ms,omitempty"`
	JitterMs    *float64 `json:"jitter_ms,omitempty"`
	LossPct     *float64 `json:"loss_pct,omitempty"`
	SendLossPct *float64 `json:"send_loss_pct,omitempty"`
	SendKbps    *float64 `json:"send_kbps,omitempty"`
	ReceiveKbps *float64 `json:"receive_kbps,omitempty"`
	FrameRate   *float64 `json:"frame_rate,omitempty"`
	IntervalMs  int      `json:"interval_ms"` // how long the figures were measured over
}

func (m *StatsSend) validate() error {
	if m.IntervalMs < 1000 || m.IntervalMs > 600_000 {
		return errors.New("interval_ms must be within 1000..600000")
	}
	for _, f := range []struct {
		name  string
		v     *float64
		limit float64
	}{
		{"rtt_ms", m.RTTMs, maxStatsRTTMs},
		{"jitter_ms", m.JitterMs, maxStatsJitterMs},
		{"loss_pct", m.LossPct, 100},
		{"send_loss_pct", m.SendLossPct, 100},
		{"send_kbps", m.SendKbps, maxStatsKbps},
		{"receive_kbps", m.ReceiveKbps, maxStatsKbps},
		{"frame_rate", m.FrameRate, maxStatsFrameRate},
	} {
		if err := figure(f.name, f.v, f.limit); err != nil {
			return err
		}
	}
	if m.RTTMs == nil && m.JitterMs == nil && m.LossPct == nil && m.SendLossPct == nil &&
		m.SendKbps == nil && m.ReceiveKbps == nil && m.FrameRate == nil {
		return fmt.Errorf("no figure: send at least one")
	}
	return nil
}
