package media

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// Call quality as the SFU sees it, from RTCP it reads anyway: the receiver reports each
// subscriber sends about the tracks it receives (loss, jitter, and with the SFU's own sender
// reports the round trip), and the sender reports each publisher sends about its tracks
// (how many packets it sent, against how many arrived). Nothing here runs per RTP packet:
// the reports arrive about once a second per track, are parsed without allocating, and leave
// a handful of atomics for whoever samples them (Room.Quality).

// reception is what the latest receiver reports of one subscriber say about one downTrack.
type reception struct {
	reports      atomic.Uint64
	fractionLost atomic.Uint32 // of 256, over the report's interval
	totalLost    atomic.Uint32 // cumulative packets lost (24 bits)
	jitter       atomic.Uint32 // interarrival jitter, in RTP timestamp units
	rttMicros    atomic.Uint32 // 0: no round trip measured yet
}

// observeReports takes the reception reports of one RTCP packet that concern this downTrack.
func (d *downTrack) observeReports(reports []rtcp.ReceptionReport) {
	d.observeReportsAt(reports, time.Now())
}

func (d *downTrack) observeReportsAt(reports []rtcp.ReceptionReport, now time.Time) {
	b := d.binding.Load()
	if b == nil {
		return
	}
	for i := range reports {
		r := &reports[i]
		if r.SSRC != b.ssrc {
			continue
		}
		d.reception.fractionLost.Store(uint32(r.FractionLost))
		d.reception.totalLost.Store(r.TotalLost)
		d.reception.jitter.Store(r.Jitter)
		if r.LastSenderReport != 0 {
			// RFC 3550 §6.4.1: round trip = arrival − LSR − DLSR, in 1/65536 s.
			rtt := ntpCompact(now) - r.LastSenderReport - r.Delay
			if rtt < 1<<30 { // else the clocks or the report are off: keep the last one
				d.reception.rttMicros.Store(uint32(uint64(rtt) * 1_000_000 >> 16))
			}
		}
		d.reception.reports.Add(1)
	}
}

// ntpCompact is the middle 32 bits of the NTP timestamp of t.
func ntpCompact(t time.Time) uint32 { return uint32(ntpTime(t) >> 16) }

// observeSenderReport reads a publisher's RTCP compound packet, as its receiver hands it over,
// for the sender report of this track: how many packets the publisher says it has sent,
// kept together with how many had arrived by then (both modulo 2³²).
func (u *upTrack) observeSenderReport(raw []byte) {
	if u == nil {
		return // the echo test's tracks
	}
	for len(raw) >= 4 {
		length := (int(binary.BigEndian.Uint16(raw[2:4])) + 1) * 4
		if length > len(raw) {
			return
		}
		const typeSenderReport = 200
		if raw[1] == typeSenderReport && length >= 28 && binary.BigEndian.Uint32(raw[4:8]) == u.mediaSSRC {
			sent := binary.BigEndian.Uint32(raw[20:24])
			received := uint32(u.packetsIn.Load())
			u.senderReport.Store(uint64(sent)<<32 | uint64(received))
			u.senderReports.Add(1)
			return
		}
		raw = raw[length:]
	}
}

// PeerQuality is what the SFU knows of one participant's connection right now: counters of
// the tracks it publishes and the latest receiver reports about the tracks it receives.
// Counters are cumulative; a sampler turns two readings into rates.
type PeerQuality struct {
	ParticipantID string
	Published     []PublishedQuality
	Received      []ReceivedQuality
}

// PublishedQuality is one track a participant publishes.
type PublishedQuality struct {
	TrackID string
	Kind    string // "audio" or "video"
	// What reached the SFU, and what it forwarded to all subscribers together.
	PacketsReceived, BytesReceived   uint64
	PacketsForwarded, BytesForwarded uint64
	Subscribers                      int
	// From the publisher's latest sender report (SenderReports counts them): the packets it
	// had sent, and the packets the SFU had received when the report arrived, modulo 2³².
	SenderReports                  uint64
	SenderPackets, PacketsAtReport uint32
}

// ReceivedQuality is one track a participant receives, as its receiver reports describe it.
type ReceivedQuality struct {
	TrackID     string
	PublisherID string
	Kind        string
	Reports     uint64 // receiver reports seen; the figures below mean nothing while 0
	// FractionLost is of 256, over the subscriber's last report interval.
	FractionLost uint8
	TotalLost    uint32
	JitterMs     float64
	RTTMs        float64 // 0: not measured
	// The publisher's track as a whole, forwarded to all its subscribers (see Subscribers).
	BytesForwarded uint64
	Subscribers    int
}

// Quality reports every participant of the room, ordered by participant ID.
func (r *Room) Quality() []PeerQuality {
	r.mu.Lock()
	ids := make([]string, 0, len(r.peers))
	for id := range r.peers {
		ids = append(ids, id)
	}
	tracks := slices.Clone(r.tracks)
	r.mu.Unlock()

	slices.Sort(ids)
	out := make([]PeerQuality, len(ids))
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		out[i].ParticipantID = id
		index[id] = i
	}
	for _, t := range tracks {
		var subs []*downTrack
		if p := t.subscribers.Load(); p != nil {
			subs = *p
		}
		bound := 0
		for _, d := range subs {
			if d.binding.Load() != nil {
				bound++
			}
		}
		sr := t.senderReport.Load()
		forwarded := t.bytesOut.Load()
		if i, ok := index[t.publisher.id]; ok {
			out[i].Published = append(out[i].Published, PublishedQuality{
				TrackID: t.id, Kind: t.kindName,
				PacketsReceived: t.packetsIn.Load(), BytesReceived: t.bytesIn.Load(),
				PacketsForwarded: t.packetsOut.Load(), BytesForwarded: forwarded,
				Subscribers: bound, SenderReports: t.senderReports.Load(),
				SenderPackets: uint32(sr >> 32), PacketsAtReport: uint32(sr),
			})
		}
		clock := float64(t.codec.ClockRate)
		if clock == 0 {
			clock = 90000
		}
		for _, d := range subs {
			i, ok := index[d.subscriber]
			if !ok || d.binding.Load() == nil {
				continue
			}
			out[i].Received = append(out[i].Received, ReceivedQuality{
				TrackID: t.id, PublisherID: t.publisher.id, Kind: t.kindName,
				Reports:        d.reception.reports.Load(),
				FractionLost:   uint8(d.reception.fractionLost.Load()),
				TotalLost:      d.reception.totalLost.Load(),
				JitterMs:       float64(d.reception.jitter.Load()) / clock * 1000,
				RTTMs:          float64(d.reception.rttMicros.Load()) / 1000,
				BytesForwarded: forwarded, Subscribers: bound,
			})
		}
	}
	for i := range out {
		slices.SortFunc(out[i].Received, func(a, b ReceivedQuality) int {
			return strings.Compare(a.PublisherID+"/"+a.TrackID, b.PublisherID+"/"+b.TrackID)
		})
	}
	return out
}

// SessionID is the session the room belongs to.
func (r *Room) SessionID() string { return r.id }

// OpenRooms is every room open now.
func (s *SFU) OpenRooms() []*Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		out = append(out, r)
	}
	return out
}
