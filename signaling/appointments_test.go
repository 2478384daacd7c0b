package signaling

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/wire"
)

func (ts *testServer) book(t *testing.T, start time.Time) api.Appointment {
	t.Helper()
	var a api.Appointment
	resp := ts.do(t, "POST", "/v1/appointments", ts.APIKey, api.CreateAppointment{
		Start: start, End: start.Add(30 * time.Minute),
		Customer: api.Customer{Name: "Ann", Email: "ann@example.com", Language: "fr"},
	}, &a)
	if resp.StatusCode != http.StatusCreated || a.CustomerURL == "" || a.SessionID == "" {
		t.Fatalf("book: %d %+v", resp.StatusCode, a)
	}
	return a
}

func pageStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, strings.ToLower(string(body))
}

func TestAppointmentsAPI(t *testing.T) {
	ts := newTestServer(t)

	t.Run("an early arrival sees when it starts and cannot join yet", func(t *testing.T) {
		a := ts.book(t, time.Now().Add(3*time.Hour))
		status, body := pageStatus(t, a.CustomerURL)
		if status != http.StatusTooEarly || !strings.Contains(body, "not started yet") {
			t.Fatalf("page: %d %.300s", status, body)
		}
		sock := ts.dial(t)
		sock.send(wire.TypeJoin, wire.Join{Token: linkToken(a.CustomerURL)})
		var e wire.Error
		sock.expect(wire.TypeError, &e)
		if e.Code != wire.CodeForbidden {
			t.Fatalf("join before the window: %+v", e)
		}
	})

	t.Run("a link for next week lasts until next week", func(t *testing.T) {
		a := ts.book(t, time.Now().Add(7*24*time.Hour))
		claims, err := ts.issuer.VerifyLink(linkToken(a.CustomerURL))
		if err != nil || claims.ExpiresAt.Before(a.End) {
			t.Fatalf("link expires %v, before the appointment ends %v (%v)", claims.ExpiresAt, a.End, err)
		}
	})

	t.Run("inside the window the link opens", func(t *testing.T) {
		a := ts.book(t, time.Now().Add(5*time.Minute))
		if status, _ := pageStatus(t, a.CustomerURL); status != http.StatusOK {
			t.Fatalf("page: %d", status)
		}
		sock := ts.dial(t)
		sock.send(wire.TypeJoin, wire.Join{Token: linkToken(a.CustomerURL)})
		sock.expect(wire.TypeWaiting, nil)
	})

	t.Run("rescheduling moves the window and counts a revision", func(t *testing.T) {
		a := ts.book(t, time.Now().Add(5*time.Minute))
		later, end := time.Now().Add(48*time.Hour), time.Now().Add(49*time.Hour)
		var got api.Appointment
		resp := ts.do(t, "PATCH", "/v1/appointments/"+a.ID, ts.APIKey, api.UpdateAppointment{Start: &later, End: &end}, &got)
		if resp.StatusCode != 200 || got.Revision != 2 {
			t.Fatalf("patch: %d %+v", resp.StatusCode, got)
		}
		if status, _ := pageStatus(t, a.CustomerURL); status != http.StatusTooEarly {
			t.Fatalf("page after reschedule: %d", status)
		}
	})

	t.Run("a cancelled appointment's link says so", func(t *testing.T) {
		a := ts.book(t, time.Now().Add(5*time.Minute))
		if resp := ts.do(t, "DELETE", "/v1/appointments/"+a.ID, ts.APIKey, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("cancel: %d", resp.StatusCode)
		}
		status, body := pageStatus(t, a.CustomerURL)
		if status != http.StatusGone || !strings.Contains(body, "cancelled") {
			t.Fatalf("page: %d %.300s", status, body)
		}
		if resp := ts.do(t, "DELETE", "/v1/appointments/"+a.ID, ts.APIKey, nil, nil); resp.StatusCode != http.StatusConflict {
			t.Fatalf("second cancel: %d", resp.StatusCode)
		}
	})

	t.Run("revoked links are replaced by new ones", func(t *testing.T) {
		s := ts.createSession(t)
		time.Sleep(1100 * time.Millisecond) // links carry their issue time in whole seconds
		var links api.Links
		if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/links", ts.APIKey, nil, &links); resp.StatusCode != 201 {
			t.Fatalf("new links: %d", resp.StatusCode)
		}
		if status, body := pageStatus(t, s.CustomerURL); status != http.StatusGone || !strings.Contains(body, "replaced") {
			t.Fatalf("old link: %d", status)
		}
		if status, _ := pageStatus(t, links.CustomerURL); status != http.StatusOK {
			t.Fatalf("new link: %d", status)
		}
	})

	t.Run("lists filter by state and page", func(t *testing.T) {
		var list api.AppointmentList
		ts.do(t, "GET", "/v1/appointments?state=cancelled", ts.APIKey, nil, &list)
		if len(list.Data) != 1 || list.Data[0].State != "cancelled" {
			t.Fatalf("cancelled = %+v", list.Data)
		}
		ts.do(t, "GET", "/v1/appointments?limit=2", ts.APIKey, nil, &list)
		if len(list.Data) != 2 || !list.HasMore || list.NextCursor == "" {
			t.Fatalf("page = %+v", list)
		}
		var next api.AppointmentList
		ts.do(t, "GET", "/v1/appointments?limit=2&starting_after="+list.NextCursor, ts.APIKey, nil, &next)
		if len(next.Data) != 2 || next.Data[0].ID == list.Data[1].ID {
			t.Fatalf("next page = %+v", next)
		}
	})

	t.Run("bad bookings are refused with problems", func(t *testing.T) {
		start := time.Now().Add(time.Hour)
		cases := []api.CreateAppointment{
			{Start: start, End: start.Add(-time.Minute), Customer: api.Customer{Name: "A", Email: "a@example.com"}},
			{Start: start, End: start.Add(time.Hour), Customer: api.Customer{Name: "A"}},
			{Start: start, End: start.Add(time.Hour), Customer: api.Customer{Name: "A", Phone: "0151 nope"}},
			{Start: start, End: start.Add(time.Hour), Customer: api.Customer{Name: "A", Email: "a@example.com"}, SpecialistID: "spc_nobody"},
		}
		for i, c := range cases {
			if resp := ts.do(t, "POST", "/v1/appointments", ts.APIKey, c, nil); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("case %d: %d", i, resp.StatusCode)
			}
		}
	})
}

func TestAppointmentsAPIFiltersReassignsAndShowsDelivery(t *testing.T) {
	ts := newTestServer(t) // no email or SMS provider configured
	ctx := t.Context()
	org := ts.boot.OrganizationID
	spcA, err := ts.rooms.CreateSpecialist(ctx, org, "a@clinic.example", "A", "x", rooms.StaffSpecialist)
	if err != nil {
		t.Fatal(err)
	}
	spcB, err := ts.rooms.CreateSpecialist(ctx, org, "b@clinic.example", "B", "x", rooms.StaffSpecialist)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	var booked []api.Appointment
	for i := range 4 {
		spc := spcA.ID
		if i%2 == 1 {
			spc = spcB.ID
		}
		var a api.Appointment
		resp := ts.do(t, "POST", "/v1/appointments", ts.APIKey, api.CreateAppointment{
			Start: base.Add(time.Duration(i) * time.Hour), End: base.Add(time.Duration(i)*time.Hour + 30*time.Minute),
			Customer: api.Customer{Name: "C", Email: "c@example.com"}, SpecialistID: spc}, &a)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("book: %d", resp.StatusCode)
		}
		booked = append(booked, a)
	}

	t.Run("the booking answer shows its notification queued", func(t *testing.T) {
		n := booked[0].Notifications
		if len(n) != 1 || n[0].Kind != "booked" || n[0].Channel != "email" || n[0].ID != booked[0].ID+".booked.email.1" {
			t.Fatalf("notifications = %+v", n)
		}
	})

	t.Run("a notification that cannot be sent shows failed with its reason", func(t *testing.T) {
		n := ts.waitNotification(t, booked[0].ID, "booked")
		if n.State != "failed" || !strings.Contains(n.LastError, "no provider") {
			t.Fatalf("notification = %+v", n)
		}
	})

	t.Run("lists filter by specialist and by start time", func(t *testing.T) {
		var list api.AppointmentList
		ts.do(t, "GET", "/v1/appointments?specialist_id="+spcB.ID, ts.APIKey, nil, &list)
		if len(list.Data) != 2 || list.Data[0].ID != booked[1].ID || list.Data[1].ID != booked[3].ID {
			t.Fatalf("by specialist = %+v", list.Data)
		}
		from, to := base.Add(time.Hour).Format(time.RFC3339), base.Add(3*time.Hour).Format(time.RFC3339)
		ts.do(t, "GET", "/v1/appointments?from="+from+"&to="+to, ts.APIKey, nil, &list)
		if len(list.Data) != 2 || list.Data[0].ID != booked[1].ID || list.Data[1].ID != booked[2].ID {
			t.Fatalf("by time = %+v", list.Data)
		}
		if resp := ts.do(t, "GET", "/v1/appointments?from=yesterday", ts.APIKey, nil, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad time: %d", resp.StatusCode)
		}
		if resp := ts.do(t, "GET", "/v1/appointments?state=lost", ts.APIKey, nil, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad state: %d", resp.StatusCode)
		}
	})

	t.Run("reassigning changes the specialist and counts a revision", func(t *testing.T) {
		var got api.Appointment
		resp := ts.do(t, "PATCH", "/v1/appointments/"+booked[0].ID, ts.APIKey, api.UpdateAppointment{SpecialistID: &spcB.ID}, &got)
		if resp.StatusCode != 200 || got.SpecialistID != spcB.ID || got.Revision != 2 || !got.Start.Equal(booked[0].Start) {
			t.Fatalf("reassign: %d %+v", resp.StatusCode, got)
		}
		if len(notificationsOf(got, "rescheduled")) != 0 {
			t.Fatalf("a reassignment is not a reschedule: %+v", got.Notifications)
		}
	})

	t.Run("a reschedule is checked like a booking", func(t *testing.T) {
		past, long := time.Now().Add(-2*time.Hour), base.Add(10*time.Hour)
		cases := []api.UpdateAppointment{
			{Start: &past, End: new(past.Add(time.Hour))}, // already over
			{End: &long},                       // longer than 8h
			{End: new(base.Add(-time.Minute))}, // ends before it starts
		}
		for i, c := range cases {
			if resp := ts.do(t, "PATCH", "/v1/appointments/"+booked[1].ID, ts.APIKey, c, nil); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("case %d: %d", i, resp.StatusCode)
			}
		}
		if resp := ts.do(t, "PATCH", "/v1/appointments/apt_nothere", ts.APIKey, api.UpdateAppointment{End: &long}, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown appointment: %d", resp.StatusCode)
		}
	})
}
