package rooms

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAppointmentLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	start := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	a, sess, err := s.BookAppointment(ctx, Appointment{OrgID: "org_a", Start: start, End: start.Add(30 * time.Minute),
		Customer: Customer{Name: "Ann", Email: "ann@example.com", Language: "fr"}, SpecialistID: "spc_1"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if a.SessionID != sess.ID || sess.AppointmentID != a.ID || !sess.OpensAt.Equal(start.Add(-10*time.Minute)) {
		t.Fatalf("appointment %+v session %+v", a, sess)
	}

	t.Run("the link opens only inside the window", func(t *testing.T) {
		issued := time.Now()
		cases := []struct {
			at   time.Time
			want error
		}{
			{start.Add(-time.Hour), ErrTooEarly},
			{start.Add(-5 * time.Minute), nil},
			{start.Add(35 * time.Minute), nil},
			{start.Add(41 * time.Minute), ErrTooLate},
		}
		for _, c := range cases {
			if err := sess.LinkOpen(issued, c.at); !errors.Is(err, c.want) {
				t.Errorf("at %v: %v, want %v", c.at.Sub(start), err, c.want)
			}
		}
	})

	t.Run("rescheduling moves the window", func(t *testing.T) {
		later := start.Add(24 * time.Hour)
		end := later.Add(time.Hour)
		got, err := s.UpdateAppointment(ctx, "org_a", a.ID, AppointmentChange{Start: &later, End: &end}, 10*time.Minute)
		if err != nil || got.Revision != 2 || !got.Start.Equal(later) {
			t.Fatalf("reschedule: %v %+v", err, got)
		}
		sess, _ := s.Session(ctx, "org_a", a.SessionID)
		if !sess.OpensAt.Equal(later.Add(-10 * time.Minute)) {
			t.Fatalf("window not moved: %v", sess.OpensAt)
		}
		bad := later.Add(-2 * time.Hour)
		if _, err := s.UpdateAppointment(ctx, "org_a", a.ID, AppointmentChange{End: &bad}, 0); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("end before start accepted: %v", err)
		}
	})

	t.Run("revoked links no longer open", func(t *testing.T) {
		issued := time.Now().Add(-2 * time.Second)
		sess, err := s.RevokeLinks(ctx, "org_a", a.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		inWindow := sess.OpensAt.Add(time.Minute)
		if err := sess.LinkOpen(issued, inWindow); !errors.Is(err, ErrLinkRevoked) {
			t.Fatalf("old link: %v", err)
		}
		if err := sess.LinkOpen(time.Now().Add(time.Second), inWindow); err != nil {
			t.Fatalf("new link: %v", err)
		}
	})

	t.Run("cancelling ends the session", func(t *testing.T) {
		got, err := s.CancelAppointment(ctx, "org_a", a.ID, "api")
		if err != nil || got.State != AppointmentCancelled {
			t.Fatalf("cancel: %v %+v", err, got)
		}
		sess, _ := s.Session(ctx, "org_a", a.SessionID)
		if sess.State != SessionEnded || sess.EndReason != ReasonCancelled {
			t.Fatalf("session = %+v", sess)
		}
		if _, err := s.CancelAppointment(ctx, "org_a", a.ID, "api"); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("second cancel: %v", err)
		}
	})

	t.Run("another organisation sees nothing", func(t *testing.T) {
		if _, err := s.Appointment(ctx, "org_b", a.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("read: %v", err)
		}
		if _, err := s.CancelAppointment(ctx, "org_b", a.ID, "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("cancel: %v", err)
		}
	})
}

func TestListAppointmentsFiltersAndPages(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 5 {
		spec := "spc_1"
		if i%2 == 1 {
			spec = "spc_2"
		}
		a, _, err := s.BookAppointment(ctx, Appointment{OrgID: "org_a", Start: base.Add(time.Duration(4-i) * time.Hour),
			End: base.Add(time.Duration(5-i) * time.Hour), SpecialistID: spec}, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	all, more, err := s.ListAppointments(ctx, "org_a", AppointmentFilter{Limit: 2})
	if err != nil || !more || len(all) != 2 || all[0].ID != ids[4] || all[1].ID != ids[3] {
		t.Fatalf("page 1 (by start time): %v %v %+v", err, more, all)
	}
	next, _, _ := s.ListAppointments(ctx, "org_a", AppointmentFilter{Limit: 2, After: all[1].ID})
	if len(next) != 2 || next[0].ID != ids[2] {
		t.Fatalf("page 2: %+v", next)
	}
	bySpec, _, _ := s.ListAppointments(ctx, "org_a", AppointmentFilter{SpecialistID: "spc_2"})
	if len(bySpec) != 2 {
		t.Fatalf("by specialist: %d", len(bySpec))
	}
	window, _, _ := s.ListAppointments(ctx, "org_a", AppointmentFilter{From: base.Add(time.Hour), To: base.Add(3 * time.Hour)})
	if len(window) != 2 {
		t.Fatalf("by time: %d", len(window))
	}
	_, _ = s.CancelAppointment(ctx, "org_a", ids[0], "x")
	cancelled, _, _ := s.ListAppointments(ctx, "org_a", AppointmentFilter{State: AppointmentCancelled})
	if len(cancelled) != 1 || cancelled[0].ID != ids[0] {
		t.Fatalf("by state: %+v", cancelled)
	}
}

func TestReminderDue(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	booked := Appointment{State: AppointmentBooked, Start: start, End: start.Add(time.Hour), Revision: 1,
		UpdatedAt: start.Add(-3 * time.Hour)}
	with := func(change func(*Appointment)) Appointment { a := booked; change(&a); return a }
	cases := []struct {
		name string
		a    Appointment
		lead time.Duration
		want bool
	}{
		{"a booked appointment is reminded lead before its start", booked, time.Hour, true},
		{"reminders are off with no lead", booked, 0, false},
		{"a cancelled appointment gets none", with(func(a *Appointment) { a.State = AppointmentCancelled }), time.Hour, false},
		{"a revision already reminded gets none", with(func(a *Appointment) { a.RemindedRevision = 1 }), time.Hour, false},
		{"a new revision gets its own", with(func(a *Appointment) { a.RemindedRevision, a.Revision = 1, 2 }), time.Hour, true},
		{"one booked inside the lead time gets none", with(func(a *Appointment) { a.UpdatedAt = start.Add(-30 * time.Minute) }), time.Hour, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at, ok := c.a.ReminderDue(c.lead)
			if ok != c.want || (ok && !at.Equal(start.Add(-c.lead))) {
				t.Fatalf("ReminderDue = %v %v, want %v at %v", at, ok, c.want, start.Add(-c.lead))
			}
		})
	}
}

func TestMarkRemindedIsCompareAndSet(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	start := time.Now().Add(2 * time.Hour).UTC()
	a, _, err := s.BookAppointment(ctx, Appointment{OrgID: "org_a", Start: start, End: start.Add(time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("of many markers at once exactly one wins", func(t *testing.T) {
		wins := make(chan bool, 8)
		for range 8 {
			go func() {
				ok, err := s.MarkReminded(ctx, "org_a", a.ID, 1)
				if err != nil {
					t.Error(err)
				}
				wins <- ok
			}()
		}
		n := 0
		for range 8 {
			if <-wins {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d winners", n)
		}
		got, _ := s.Appointment(ctx, "org_a", a.ID)
		if got.RemindedRevision != 1 || got.Revision != 1 || !got.UpdatedAt.Equal(a.UpdatedAt) {
			t.Fatalf("marking must change nothing else: %+v", got)
		}
	})

	t.Run("a stale revision is not marked", func(t *testing.T) {
		later := start.Add(time.Hour)
		if _, err := s.UpdateAppointment(ctx, "org_a", a.ID, AppointmentChange{Start: &later, End: new(later.Add(time.Hour))}, 0); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.MarkReminded(ctx, "org_a", a.ID, 1); ok || err != nil {
			t.Fatalf("old revision marked: %v %v", ok, err)
		}
		if ok, err := s.MarkReminded(ctx, "org_a", a.ID, 2); !ok || err != nil {
			t.Fatalf("new revision: %v %v", ok, err)
		}
	})
}

func TestWatchAppointmentsSendsStoredThenChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStore(t)
	start := time.Now().Add(time.Hour).UTC()
	first, _, err := s.BookAppointment(ctx, Appointment{OrgID: "org_a", Start: start, End: start.Add(time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	updates, err := s.WatchAppointments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func() AppointmentUpdate {
		t.Helper()
		select {
		case u := <-updates:
			return u
		case <-time.After(5 * time.Second):
			t.Fatal("no update")
		}
		return AppointmentUpdate{}
	}
	if u := next(); u.Appointment == nil || u.Appointment.ID != first.ID {
		t.Fatalf("stored: %+v", u)
	}
	if u := next(); !u.CaughtUp {
		t.Fatalf("caught up: %+v", u)
	}
	if _, err := s.CancelAppointment(ctx, "org_a", first.ID, "x"); err != nil {
		t.Fatal(err)
	}
	if u := next(); u.Appointment == nil || u.Appointment.State != AppointmentCancelled {
		t.Fatalf("change: %+v", u)
	}
	cancel()
	for range updates { // closed once ctx ends
	}
}
