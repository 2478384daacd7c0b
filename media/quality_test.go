package media

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func TestReceiverReportsGiveLossJitterAndRoundTrip(t *testing.T) {
	up := &upTrack{}
	up.codec.ClockRate = 90000
	d := newDownTrack(up)
	d.binding.Store(&binding{ssrc: 1234})

	sentAt := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	arrival := sentAt.Add(250 * time.Millisecond)
	// The subscriber held our sender report for 200 ms before it reported: 50 ms round trip.
	reports := []rtcp.ReceptionReport{
		{SSRC: 999, FractionLost: 255, Jitter: 9000}, // another track's: ignored
		{SSRC: 1234, FractionLost: 64, TotalLost: 7, Jitter: 900, LastSenderReport: ntpCompact(sentAt), Delay: 200 * 65536 / 1000},
	}
	d.observeReportsAt(reports, arrival)

	if got := d.reception.reports.Load(); got != 1 {
		t.Fatalf("reports = %d, want 1 (only the track's own)", got)
	}
	if got := d.reception.fractionLost.Load(); got != 64 {
		t.Errorf("fraction lost = %d, want 64", got)
	}
	if got := d.reception.totalLost.Load(); got != 7 {
		t.Errorf("total lost = %d", got)
	}
	if rtt := float64(d.reception.rttMicros.Load()) / 1000; rtt < 49 || rtt > 51 {
		t.Errorf("round trip = %.2f ms, want 50", rtt)
	}

	t.Run("a report without a sender report keeps the last round trip", func(t *testing.T) {
		before := d.reception.rttMicros.Load()
		d.observeReportsAt([]rtcp.ReceptionReport{{SSRC: 1234, Jitter: 90}}, arrival.Add(time.Second))
		if got := d.reception.rttMicros.Load(); got != before {
			t.Errorf("round trip changed to %d µs", got)
		}
	})
	t.Run("an unbound track takes no reports", func(t *testing.T) {
		d2 := newDownTrack(up)
		d2.observeReportsAt(reports, arrival)
		if d2.reception.reports.Load() != 0 {
			t.Error("counted")
		}
	})
}

func TestSenderReportCountsArePairedWithWhatArrived(t *testing.T) {
	up := &upTrack{mediaSSRC: 0xdeadbeef}
	up.packetsIn.Store(95)
	rr, err := (&rtcp.ReceiverReport{SSRC: 1}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sr, err := (&rtcp.SenderReport{SSRC: 0xdeadbeef, PacketCount: 100, OctetCount: 12345}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := (&rtcp.SenderReport{SSRC: 7, PacketCount: 5}).Marshal()
	up.observeSenderReport(append(append(rr, other...), sr...)) // a compound packet
	if up.senderReports.Load() != 1 {
		t.Fatalf("sender reports = %d, want 1", up.senderReports.Load())
	}
	v := up.senderReport.Load()
	if sent, got := uint32(v>>32), uint32(v); sent != 100 || got != 95 {
		t.Errorf("sent %d, received %d; want 100 and 95", sent, got)
	}
	up.observeSenderReport([]byte{0x80, 200, 0xff, 0xff}) // a length past the end
	var none *upTrack
	none.observeSenderReport(sr) // the echo test's tracks have none
	if up.senderReports.Load() != 1 {
		t.Error("a truncated packet counted")
	}
}

func TestObservingReportsAllocatesNothing(t *testing.T) {
	up := &upTrack{mediaSSRC: 42}
	up.codec.ClockRate = 48000
	d := newDownTrack(up)
	d.binding.Store(&binding{ssrc: 1234})
	reports := []rtcp.ReceptionReport{{SSRC: 1234, FractionLost: 3, Jitter: 10, LastSenderReport: 1, Delay: 1}}
	sr, _ := (&rtcp.SenderReport{SSRC: 42, PacketCount: 10}).Marshal()
	if n := testing.AllocsPerRun(100, func() {
		d.observeReports(reports)
		up.observeSenderReport(sr)
	}); n != 0 {
		t.Errorf("%v allocations per report", n)
	}
}
