package signaling

import (
	"testing"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/wire"
)

func TestAnalyzeCountsOutcomesTimesAndSpecialists(t *testing.T) {
	day := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := day.Add(d); return &v }
	sessions := []rooms.Session{
		{ID: "s1", CreatedAt: day, State: rooms.SessionEnded, EndedAt: at(11 * time.Minute), Participants: []rooms.Participant{
			{Role: rooms.RoleCustomer, JoinedAt: day, AdmittedAt: at(time.Minute), State: rooms.ParticipantLeft},
			{Role: rooms.RoleSpecialist, Key: "specialist:spc_a", Name: "Sam", JoinedAt: *at(time.Minute), LeftAt: at(11 * time.Minute)},
		}},
		{ID: "s2", CreatedAt: day.Add(time.Hour), State: rooms.SessionEnded, EndedAt: at(time.Hour + 30*time.Minute), Participants: []rooms.Participant{
			{Role: rooms.RoleCustomer, JoinedAt: *at(time.Hour), AdmittedAt: at(time.Hour + 3*time.Minute), State: rooms.ParticipantLeft},
			{Role: rooms.RoleCustomer, JoinedAt: *at(time.Hour), State: rooms.ParticipantDenied},
			{Role: rooms.RoleSpecialist, Key: "specialist:spc_a", Name: "Sam", JoinedAt: *at(time.Hour), LeftAt: at(time.Hour + 30*time.Minute)},
		}},
		{ID: "s3", CreatedAt: day.Add(24 * time.Hour), State: rooms.SessionEnded, EndedAt: at(25 * time.Hour), Participants: []rooms.Participant{
			{Role: rooms.RoleCustomer, JoinedAt: *at(24 * time.Hour), State: rooms.ParticipantLeft}, // gave up
		}},
		{ID: "s4", CreatedAt: day.Add(25 * time.Hour), State: rooms.SessionWaiting, Participants: []rooms.Participant{
			{Role: rooms.RoleCustomer, JoinedAt: *at(25 * time.Hour), State: rooms.ParticipantWaiting},
		}},
		{ID: "outside", CreatedAt: day.Add(-48 * time.Hour), State: rooms.SessionEnded},
	}
	rep := analyze(sessions, day, day.Add(48*time.Hour), day.Add(26*time.Hour))
	if rep.Sessions != 4 || rep.SessionsStillOpen != 1 {
		t.Fatalf("sessions %d, open %d", rep.Sessions, rep.SessionsStillOpen)
	}
	if got := rep.Customers; got != (customerOutcomes{Admitted: 2, Denied: 1, Abandoned: 1, Waiting: 1}) {
		t.Fatalf("customers = %+v", got)
	}
	if len(rep.SessionsPerDay) != 3 || rep.SessionsPerDay[0] != (dayCount{"2026-11-02", 2}) || rep.SessionsPerDay[1] != (dayCount{"2026-11-03", 2}) ||
		rep.SessionsPerDay[2] != (dayCount{"2026-11-04", 0}) {
		t.Fatalf("per day = %+v", rep.SessionsPerDay)
	}
	// Waits of 60 s and 180 s; calls of 10 and 27 minutes from the first admission.
	if w := rep.WaitingSeconds; w.Count != 2 || w.Max != 180 || w.Median != 180 && w.Median != 60 {
		t.Fatalf("waiting = %+v", w)
	}
	if d := rep.DurationSeconds; d.Count != 2 || d.Max != 27*60 {
		t.Fatalf("duration = %+v", d)
	}
	if len(rep.PerSpecialist) != 1 || rep.PerSpecialist[0].SpecialistID != "spc_a" || rep.PerSpecialist[0].Sessions != 2 ||
		rep.PerSpecialist[0].InCallSeconds.Max != 30*60 {
		t.Fatalf("per specialist = %+v", rep.PerSpecialist)
	}
}

func TestAnalyticsAPI(t *testing.T) {
	ts := newTestServer(t)
	// One customer admitted, one denied, one who gave up before anyone came.
	admitted := ts.startCall(t)
	denied := ts.createSession(t)
	c := ts.dial(t)
	c.send(wire.TypeJoin, wire.Join{Token: linkToken(denied.CustomerURL), Name: "Bob"})
	var w wire.Welcome
	c.expect(wire.TypeWelcome, &w)
	sp := ts.dial(t)
	sp.send(wire.TypeJoin, wire.Join{Token: linkToken(denied.SpecialistURL), Name: "Sam"})
	sp.expect(wire.TypeWelcome, nil)
	sp.send(wire.TypeDeny, wire.Deny{ParticipantID: w.ParticipantID})
	c.expect(wire.TypeDenied, nil)
	gaveUp := ts.createSession(t)
	g := ts.dial(t)
	g.send(wire.TypeJoin, wire.Join{Token: linkToken(gaveUp.CustomerURL), Name: "Cat"})
	g.expect(wire.TypeWaiting, nil)
	for _, id := range []string{admitted.session.ID, denied.ID, gaveUp.ID} {
		ts.do(t, "POST", "/v1/sessions/"+id+"/end", ts.APIKey, nil, nil)
	}

	var rep analyticsReport
	if resp := ts.do(t, "GET", "/v1/analytics", ts.APIKey, nil, &rep); resp.StatusCode != 200 {
		t.Fatalf("analytics: %d", resp.StatusCode)
	}
	if rep.Sessions != 3 || rep.Customers != (customerOutcomes{Admitted: 1, Denied: 1, Abandoned: 1}) || rep.WaitingSeconds.Count != 1 {
		t.Fatalf("report = %+v", rep)
	}
	if len(rep.SessionsPerDay) < 30 || rep.SessionsPerDay[len(rep.SessionsPerDay)-1].Sessions != 3 {
		t.Fatalf("per day ends with %+v", rep.SessionsPerDay[len(rep.SessionsPerDay)-1])
	}
	if resp := ts.do(t, "GET", "/v1/analytics?from=yesterday", ts.APIKey, nil, nil); resp.StatusCode != 400 {
		t.Fatalf("a bad from: %d", resp.StatusCode)
	}
	var empty analyticsReport
	ts.do(t, "GET", "/v1/analytics?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", ts.APIKey, nil, &empty)
	if empty.Sessions != 0 || len(empty.SessionsPerDay) != 1 {
		t.Fatalf("a window without sessions: %+v", empty)
	}
}
