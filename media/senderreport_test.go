package media

import (
	"testing"
	"time"
)

func TestSenderReportsFollowTheTracksClockAndCountWhatWasSent(t *testing.T) {
	up := &upTrack{}
	up.codec.ClockRate = 90000
	d := newDownTrack(up)
	if _, ok := d.senderReport(time.Now()); ok {
		t.Fatal("a report for a copy that is not bound")
	}
	d.binding.Store(&binding{ssrc: 4242})
	if _, ok := d.senderReport(time.Now()); ok {
		t.Fatal("a report before anything was sent")
	}

	up.clock.observe(1_000_000)
	frameAt := up.clock.at
	up.clock.observe(1_000_000) // the frame's second packet: the clock does not move
	if up.clock.at != frameAt {
		t.Fatal("the clock was read again for a packet of the same frame")
	}
	for _, size := range []int{1000, 1000, 200} {
		d.sent.add(size)
	}

	now := frameAt.Add(100 * time.Millisecond)
	sr, ok := d.senderReport(now)
	if !ok {
		t.Fatal("no report for a bound copy that has sent")
	}
	if sr.SSRC != 4242 || sr.PacketCount != 3 || sr.OctetCount != 2200 {
		t.Errorf("report %+v, want SSRC 4242, 3 packets, 2200 octets", sr)
	}
	// 100 ms after the frame's first packet, a 90 kHz clock is 9 000 ticks further.
	if want := uint32(1_000_000 + 9000); sr.RTPTime != want {
		t.Errorf("RTP time %d, want %d", sr.RTPTime, want)
	}
	if sr.NTPTime != ntpTime(now) {
		t.Errorf("NTP time %x, want %x", sr.NTPTime, ntpTime(now))
	}

	// A timestamp that wraps around stays on the clock.
	up.clock.observe(0xffff_ff00)
	sr, _ = d.senderReport(up.clock.at.Add(time.Second))
	if want := uint32(90000 - 0x100); sr.RTPTime != want {
		t.Errorf("RTP time across the wrap %d, want %d", sr.RTPTime, want)
	}
}

func TestNTPTime(t *testing.T) {
	epoch := time.Unix(0, 0)
	if got, want := ntpTime(epoch), uint64(2208988800)<<32; got != want {
		t.Errorf("1970: %x, want %x", got, want)
	}
	if got, want := ntpTime(epoch.Add(1500*time.Millisecond)), (uint64(2208988801)<<32)|1<<31; got != want {
		t.Errorf("1970 + 1.5 s: %x, want %x", got, want)
	}
}

// Subscribers get sender reports for every track they receive: their receiver reports then
// refer to them, which is how the SFU measures each subscriber's round trip.
func TestSubscribersGetSenderReportsForEveryTrack(t *testing.T) {
	_, room, _, _ := callOfTwo(t, testContext(t), Config{})

	room.mu.Lock()
	tracks := append([]*upTrack(nil), room.tracks...)
	room.mu.Unlock()
	if len(tracks) != 4 {
		t.Fatalf("%d tracks published, want 4 (audio and video from each)", len(tracks))
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, up := range tracks {
		subs := up.subscribers.Load()
		if subs == nil || len(*subs) != 1 {
			t.Fatalf("%s's %s track: %v subscribers, want 1", up.streamID, up.kind, subs)
		}
		d := (*subs)[0]
		for d.reception.rttMicros.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s's %s track: %s's receiver reports never referred to a sender report (%d reports)",
					up.streamID, up.kind, d.subscriber, d.reception.reports.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if rtt := time.Duration(d.reception.rttMicros.Load()) * time.Microsecond; rtt > 500*time.Millisecond {
			t.Errorf("%s's %s track to %s: round trip %v on loopback", up.streamID, up.kind, d.subscriber, rtt)
		}
	}
}
