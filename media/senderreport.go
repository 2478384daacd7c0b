package media

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// senderReportInterval is how often each subscriber gets a sender report for every track it
// receives: what browsers use to play a participant's audio and video in sync, and what the
// round trip in their receiver reports is measured from.
//
// The SFU writes these itself rather than through Pion's sender-report interceptor, which
// took a lock and read the clock for every copy of every packet. Here the clock is read once
// per frame per published track (frameClock), and each copy costs two atomic adds
// (sentCounts).
const senderReportInterval = time.Second

// frameClock maps a published track's RTP timestamps to wall-clock time: the timestamp of the
// latest frame and when its first packet arrived. Timestamps pass through the SFU unchanged,
// so the mapping holds for every subscriber's copy.
type frameClock struct {
	// Owned by the forwarding goroutine.
	last    uint32
	started bool

	mu  sync.Mutex
	rtp uint32
	at  time.Time // zero: no packet yet
}

// observe notes a packet's timestamp; the clock is read only when a new frame starts.
func (c *frameClock) observe(timestamp uint32) {
	if c.started && timestamp == c.last {
		return
	}
	c.last, c.started = timestamp, true
	now := time.Now()
	c.mu.Lock()
	c.rtp, c.at = timestamp, now
	c.mu.Unlock()
}

// timestampAt returns the RTP timestamp the track's clock shows at now, extrapolated from the latest
// frame; false before the first packet.
func (c *frameClock) timestampAt(now time.Time, clockRate uint32) (uint32, bool) {
	c.mu.Lock()
	rtp, at := c.rtp, c.at
	c.mu.Unlock()
	if at.IsZero() || clockRate == 0 {
		return 0, false
	}
	elapsed := now.Sub(at)
	return rtp + uint32(int64(elapsed)*int64(clockRate)/int64(time.Second)), true
}

// sentCounts are the packets and payload octets written to one subscriber's copy of a track,
// retransmissions included, as its sender reports give them.
type sentCounts struct {
	packets, octets atomic.Uint32
}

func (s *sentCounts) add(payload int) {
	s.packets.Add(1)
	s.octets.Add(uint32(payload))
}

// senderReport is the report for one subscriber's copy of a track at now; false while the
// copy is not bound or nothing has been sent on it.
func (d *downTrack) senderReport(now time.Time) (*rtcp.SenderReport, bool) {
	b := d.binding.Load()
	if b == nil || d.sent.packets.Load() == 0 {
		return nil, false
	}
	timestamp, ok := d.up.clock.timestampAt(now, d.up.codec.ClockRate)
	if !ok {
		return nil, false
	}
	return &rtcp.SenderReport{
		SSRC:        b.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     timestamp,
		PacketCount: d.sent.packets.Load(),
		OctetCount:  d.sent.octets.Load(),
	}, true
}

// sendSenderReports sends the subscriber one sender report per track it receives, in one
// compound packet. Called by the peer's loop, which owns its subscriptions.
func (p *Peer) sendSenderReports(now time.Time) {
	var reports []rtcp.Packet
	for _, d := range p.subscriptions {
		if sr, ok := d.senderReport(now); ok {
			reports = append(reports, sr)
		}
	}
	if len(reports) == 0 {
		return
	}
	if err := p.pc.WriteRTCP(reports); err != nil {
		p.log.Debug("sender reports", "err", err)
	}
}

// ntpTime is t in the 64-bit NTP format of sender reports: seconds since 1900 and their
// fraction.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1_000_000_000
	return secs<<32 | frac
}
