package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/wire"
)

func near2(got, want float64) bool { return math.Abs(got-want) < 0.011 }

func TestQualitySummaryMaths(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   qualityFigure
	}{
		{"nothing gives zeroes", nil, qualityFigure{}},
		{"one value is every figure", []float64{5}, qualityFigure{Count: 1, Median: 5, P90: 5, Mean: 5}},
		{"an even count interpolates the median", []float64{40, 10, 30, 20}, qualityFigure{Count: 4, Median: 25, P90: 37, Mean: 25}},
		{"p90 of 1..10 lies between 9 and 10", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, qualityFigure{Count: 10, Median: 5.5, P90: 9.1, Mean: 5.5}},
		{"an outlier moves the mean, not the median", []float64{10, 10, 10, 10, 1000}, qualityFigure{Count: 5, Median: 10, P90: 604, Mean: 208}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := figureOf(tc.values)
			if got.Count != tc.want.Count || !near2(got.Median, tc.want.Median) || !near2(got.P90, tc.want.P90) || !near2(got.Mean, tc.want.Mean) {
				t.Fatalf("figureOf(%v) = %+v, want %+v", tc.values, got, tc.want)
			}
		})
	}

	t.Run("each measure counts only the samples that have it", func(t *testing.T) {
		s := summarizeQuality([]rooms.QualitySample{
			{RTTMs: ptr(20), LossPct: ptr(0)},
			{RTTMs: ptr(40), SendKbps: ptr(800)},
			{FrameRate: ptr(30)},
		})
		if s.Samples != 3 || s.RTTMs.Count != 2 || s.RTTMs.Median != 30 || s.LossPct.Count != 1 || s.SendKbps.Mean != 800 ||
			s.FrameRate.Count != 1 || s.JitterMs.Count != 0 {
			t.Fatalf("summary = %+v", s)
		}
	})
}

func TestSFUSampleFromTwoReadings(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	reading := func(at time.Time, pq media.PeerQuality) *peerReading { return newPeerReading(at, pq) }
	before := media.PeerQuality{ParticipantID: "par_a",
		Published: []media.PublishedQuality{{TrackID: "cam", Kind: "video", BytesReceived: 1000, SenderReports: 1, SenderPackets: 100, PacketsAtReport: 100}},
		Received:  []media.ReceivedQuality{{TrackID: "cam", PublisherID: "par_b", Kind: "video", BytesForwarded: 0, Subscribers: 2}},
	}
	now := media.PeerQuality{ParticipantID: "par_a",
		Published: []media.PublishedQuality{
			{TrackID: "cam", Kind: "video", BytesReceived: 251000, SenderReports: 3, SenderPackets: 300, PacketsAtReport: 290},
			{TrackID: "mic", Kind: "audio", BytesReceived: 5000}, // new this interval: no rate yet
		},
		Received: []media.ReceivedQuality{{TrackID: "cam", PublisherID: "par_b", Kind: "video", BytesForwarded: 500000,
			Subscribers: 2, Reports: 2, FractionLost: 26, JitterMs: 4.5, RTTMs: 30}},
	}
	smp, ok := sfuSample(reading(t0, before), reading(t0.Add(2*time.Second), now), now)
	if !ok {
		t.Fatal("no sample")
	}
	check := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil || !near2(*got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("send_kbps", smp.SendKbps, 1000)       // 250 000 bytes in 2 s
	check("send_loss_pct", smp.SendLossPct, 5)   // 200 sent, 190 arrived
	check("receive_kbps", smp.ReceiveKbps, 1000) // 500 000 bytes to two subscribers in 2 s
	check("loss_pct", smp.LossPct, 10.16)        // 26/256
	check("jitter_ms", smp.JitterMs, 4.5)
	check("rtt_ms", smp.RTTMs, 30)
	if smp.Source != rooms.QualityFromSFU || smp.IntervalMs != 2000 || len(smp.Tracks) != 2 {
		t.Fatalf("sample = %+v", smp)
	}

	t.Run("no fresh receiver report: no loss, jitter or round trip", func(t *testing.T) {
		later := now
		later.Received = []media.ReceivedQuality{now.Received[0]}
		later.Received[0].BytesForwarded += 1000
		smp, _ := sfuSample(reading(t0.Add(2*time.Second), now), reading(t0.Add(4*time.Second), later), later)
		if smp.LossPct != nil || smp.JitterMs != nil || smp.RTTMs != nil || smp.ReceiveKbps == nil {
			t.Fatalf("sample = %+v", smp)
		}
	})
	t.Run("a participant with no track yet gives no sample", func(t *testing.T) {
		empty := media.PeerQuality{ParticipantID: "par_c"}
		if _, ok := sfuSample(reading(t0, empty), reading(t0.Add(time.Second), empty), empty); ok {
			t.Fatal("a sample of nothing")
		}
	})
}

func TestAnalyzeQualityPerDayAndSpecialist(t *testing.T) {
	day := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	spec := func(id, name string) rooms.Participant {
		return rooms.Participant{Role: rooms.RoleSpecialist, Key: "specialist:" + id, Name: name}
	}
	sessions := []rooms.Session{
		{ID: "ses_1", CreatedAt: day, Participants: []rooms.Participant{spec("spc_a", "Sam"), {Role: rooms.RoleCustomer}}},
		{ID: "ses_2", CreatedAt: day.Add(time.Hour), Participants: []rooms.Participant{spec("spc_b", "Bea")}},
		{ID: "ses_3", CreatedAt: day.Add(24 * time.Hour), Participants: []rooms.Participant{spec("spc_a", "Sam"), spec("spc_a", "Sam")}},
		{ID: "ses_4", CreatedAt: day.Add(24 * time.Hour)},         // no samples: not counted
		{ID: "ses_old", CreatedAt: day.Add(-10 * 24 * time.Hour)}, // before the window
		{ID: "ses_link", CreatedAt: day, Participants: []rooms.Participant{{Role: rooms.RoleSpecialist, Key: "link:x"}}},
	}
	samples := []rooms.QualitySample{
		{SessionID: "ses_1", RTTMs: ptr(10)}, {SessionID: "ses_1", RTTMs: ptr(30)},
		{SessionID: "ses_2", RTTMs: ptr(50)},
		{SessionID: "ses_3", RTTMs: ptr(100), LossPct: ptr(2)},
		{SessionID: "ses_old", RTTMs: ptr(999)},
		{SessionID: "ses_link", RTTMs: ptr(20)},
	}
	got := analyzeQuality(sessions, samples, day.Truncate(24*time.Hour), day.Add(7*24*time.Hour))
	if got.Overall.Samples != 5 || got.Overall.RTTMs.Median != 30 {
		t.Fatalf("overall = %+v", got.Overall)
	}
	if len(got.PerDay) != 2 || got.PerDay[0].Date != "2026-11-02" || got.PerDay[0].Sessions != 3 || got.PerDay[0].Samples != 4 ||
		got.PerDay[1].Date != "2026-11-03" || got.PerDay[1].Sessions != 1 || got.PerDay[1].LossPct.Mean != 2 {
		t.Fatalf("per day = %+v", got.PerDay)
	}
	if len(got.PerSpecialist) != 2 {
		t.Fatalf("per specialist = %+v", got.PerSpecialist)
	}
	a, b := got.PerSpecialist[0], got.PerSpecialist[1]
	if a.SpecialistID != "spc_a" || a.Name != "Sam" || a.Sessions != 2 || a.Samples != 3 || a.RTTMs.Median != 30 ||
		b.SpecialistID != "spc_b" || b.Sessions != 1 || b.RTTMs.Mean != 50 {
		t.Fatalf("per specialist = %+v", got.PerSpecialist)
	}
}

// waitQuality polls the session's quality until ok says it has what the test waits for.
func (ts *testServer) waitQuality(t *testing.T, sessionID string, timeout time.Duration, ok func(sessionQuality) bool) sessionQuality {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var q sessionQuality
		if resp := ts.do(t, "GET", "/v1/sessions/"+sessionID+"/quality", ts.APIKey, nil, &q); resp.StatusCode != http.StatusOK {
			t.Fatalf("quality: %d", resp.StatusCode)
		}
		if ok(q) {
			return q
		}
		if time.Now().After(deadline) {
			data, _ := json.MarshalIndent(q, "", " ")
			t.Fatalf("quality not there within %s; last:\n%s", timeout, truncateForLog(string(data), 4000))
		}
		time.Sleep(200 * time.Millisecond) // polling an API with a deadline
	}
}

func truncateForLog(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func TestCallQualityIsSampledFromTheSFUAndThePages(t *testing.T) {
	cfg := testConfig(t)
	cfg.QualityInterval = 500 * time.Millisecond
	ts := startTestServer(t, cfg)
	ctx := context.Background()
	orgID := ts.Bootstrap().OrganizationID
	hash, _ := auth.HashPassword("a long password for quinn")
	sp, err := ts.rooms.CreateSpecialist(ctx, orgID, "quinn@example.com", "Quinn", hash, rooms.StaffSpecialist)
	if err != nil {
		t.Fatal(err)
	}
	console, _, err := ts.issuer.IssueConsole(orgID, sp.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	s := ts.createSession(t)
	customer := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
	customer.expect(wire.TypeWaiting, nil)
	t.Run("a waiting customer's stats are refused", func(t *testing.T) {
		customer.write(wire.TypeStats, wire.StatsSend{RTTMs: ptr(20), IntervalMs: 10000})
		var e wire.Error
		customer.expect(wire.TypeError, &e)
		if e.Code != wire.CodeInvalidState {
			t.Fatalf("error = %+v", e)
		}
	})
	specialist := ts.joinCallAs(t, wire.Join{Token: console, SessionID: s.ID, Name: "Quinn"})
	if err := specialist.peer.Start(); err != nil {
		t.Fatal(err)
	}
	specialist.expect(wire.TypeQueue, nil)
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	if err := customer.peer.Start(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, c := range []struct{ who, from *callPeer }{{customer, specialist}, {specialist, customer}} {
		if err := c.who.peer.WaitReceivedFrom(wctx, c.from.id, webrtc.RTPCodecTypeVideo, 20); err != nil {
			t.Fatalf("no media: %v", err)
		}
	}

	t.Run("the SFU samples both participants with plausible figures", func(t *testing.T) {
		// Good samples: sending and receiving, with the other side's receiver reports.
		good := func(x rooms.QualitySample) bool {
			return x.Source == rooms.QualityFromSFU && x.SendKbps != nil && *x.SendKbps > 0 && x.ReceiveKbps != nil &&
				*x.ReceiveKbps > 0 && x.LossPct != nil && x.JitterMs != nil && x.RTTMs != nil && x.SendLossPct != nil
		}
		q := ts.waitQuality(t, s.ID, 30*time.Second, func(q sessionQuality) bool {
			seen := map[string]bool{}
			for _, x := range q.Samples {
				if good(x) {
					seen[x.ParticipantID] = true
				}
			}
			return seen[customer.id] && seen[specialist.id]
		})
		for _, x := range q.Samples {
			if !good(x) {
				continue
			}
			t.Logf("%s %s: send %.0f kbps (loss %v), receive %.0f kbps, loss %.2f%%, jitter %.2f ms, rtt %v ms", x.Role, x.ParticipantID,
				*x.SendKbps, fmtPtr(x.SendLossPct), *x.ReceiveKbps, *x.LossPct, *x.JitterMs, fmtPtr(x.RTTMs))
			if *x.SendKbps > 20000 || *x.ReceiveKbps > 20000 || *x.LossPct > 10 || *x.JitterMs > 200 ||
				(x.RTTMs != nil && *x.RTTMs > 500) || (x.SendLossPct != nil && *x.SendLossPct > 10) {
				t.Errorf("implausible on loopback: %+v", x)
			}
			if x.Role == "" || len(x.Tracks) == 0 {
				t.Errorf("sample without role or tracks: %+v", x)
			}
		}
		if q.BySource[rooms.QualityFromSFU].Samples == 0 || q.Summary.SendKbps.Mean <= 0 {
			t.Errorf("summary = %+v", q.Summary)
		}
	})

	t.Run("a page's stats are kept, at most one every two seconds", func(t *testing.T) {
		customer.write(wire.TypeStats, wire.StatsSend{RTTMs: ptr(21.5), LossPct: ptr(0.5), FrameRate: ptr(29), IntervalMs: 10000})
		customer.write(wire.TypeStats, wire.StatsSend{RTTMs: ptr(99), IntervalMs: 10000})
		var e wire.Error
		customer.expect(wire.TypeError, &e)
		if e.Code != wire.CodeRateLimited {
			t.Fatalf("second stats: %+v", e)
		}
		customer.write(wire.TypeStats, wire.StatsSend{RTTMs: ptr(-1), IntervalMs: 10000})
		customer.expect(wire.TypeError, &e)
		if e.Code != wire.CodeBadMessage {
			t.Fatalf("bad stats: %+v", e)
		}
		q := ts.waitQuality(t, s.ID, 10*time.Second, func(q sessionQuality) bool { return q.BySource[rooms.QualityFromClient].Samples > 0 })
		var client []rooms.QualitySample
		for _, x := range q.Samples {
			if x.Source == rooms.QualityFromClient {
				client = append(client, x)
			}
		}
		if len(client) != 1 || client[0].ParticipantID != customer.id || client[0].Role != rooms.RoleCustomer ||
			*client[0].RTTMs != 21.5 || *client[0].FrameRate != 29 {
			t.Fatalf("client samples = %+v", client)
		}
		var only sessionQuality
		ts.do(t, "GET", "/v1/sessions/"+s.ID+"/quality?source=client", ts.APIKey, nil, &only)
		if len(only.Samples) != 1 || only.Summary.RTTMs.Median != 21.5 {
			t.Fatalf("?source=client: %+v", only)
		}
		if resp := ts.do(t, "GET", "/v1/sessions/"+s.ID+"/quality?source=mos", ts.APIKey, nil, nil); resp.StatusCode != 400 {
			t.Fatalf("a bad source: %d", resp.StatusCode)
		}
	})

	t.Run("analytics carry the quality per day and per specialist", func(t *testing.T) {
		var rep analyticsReport
		if resp := ts.do(t, "GET", "/v1/analytics", ts.APIKey, nil, &rep); resp.StatusCode != 200 {
			t.Fatalf("analytics: %d", resp.StatusCode)
		}
		today := time.Now().UTC().Format(time.DateOnly)
		if rep.Quality.Overall.Samples == 0 || len(rep.Quality.PerDay) != 1 || rep.Quality.PerDay[0].Date != today ||
			rep.Quality.PerDay[0].Sessions != 1 {
			t.Fatalf("quality = %+v", rep.Quality)
		}
		if len(rep.Quality.PerSpecialist) != 1 || rep.Quality.PerSpecialist[0].SpecialistID != sp.ID ||
			rep.Quality.PerSpecialist[0].Samples == 0 {
			t.Fatalf("per specialist = %+v", rep.Quality.PerSpecialist)
		}
	})

	t.Run("another organisation sees none of it", func(t *testing.T) {
		other, err := ts.rooms.CreateOrganization(ctx, "Other")
		if err != nil {
			t.Fatal(err)
		}
		key := auth.NewAPIKey()
		if _, err := ts.rooms.AddAPIKey(ctx, other.ID, "other", auth.HashAPIKey(key), rooms.AllScopes()); err != nil {
			t.Fatal(err)
		}
		if resp := ts.do(t, "GET", "/v1/sessions/"+s.ID+"/quality", key, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("another organisation's key: %d, want 404", resp.StatusCode)
		}
		var rep analyticsReport
		ts.do(t, "GET", "/v1/analytics", key, nil, &rep)
		if rep.Quality.Overall.Samples != 0 || len(rep.Quality.PerDay) != 0 {
			t.Fatalf("another organisation's analytics: %+v", rep.Quality)
		}
	})
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f", *v)
}
