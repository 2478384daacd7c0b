package signaling

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/config"
)

// Reminders go out reminder-lead before an appointment starts. These tests use a lead of two
// seconds and appointments a few seconds ahead, with a real SMTP server receiving the mail.

const testReminderLead = 2 * time.Second

func reminderConfig(t *testing.T, mb *mailbox) config.Config {
	cfg := testConfig(t)
	cfg.ReminderLead = testReminderLead
	mb.configure(&cfg)
	return cfg
}

func (ts *testServer) bookFor(t *testing.T, start time.Time, customer api.Customer) api.Appointment {
	t.Helper()
	var a api.Appointment
	resp := ts.do(t, "POST", "/v1/appointments", ts.APIKey, api.CreateAppointment{
		Start: start, End: start.Add(30 * time.Minute), Customer: customer}, &a)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("book: %d %+v", resp.StatusCode, a)
	}
	return a
}

func (ts *testServer) appointment(t *testing.T, id string) api.Appointment {
	t.Helper()
	var a api.Appointment
	if resp := ts.do(t, "GET", "/v1/appointments/"+id, ts.APIKey, nil, &a); resp.StatusCode != http.StatusOK {
		t.Fatalf("get appointment: %d", resp.StatusCode)
	}
	return a
}

// notificationsOf returns the appointment's notifications of a kind.
func notificationsOf(a api.Appointment, kind string) []api.Notification {
	var out []api.Notification
	for _, n := range a.Notifications {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// waitNotification waits until the appointment shows a notification of a kind in a final state.
func (ts *testServer) waitNotification(t *testing.T, id, kind string) api.Notification {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, n := range notificationsOf(ts.appointment(t, id), kind) {
			if n.State == "sent" || n.State == "failed" || n.State == "skipped" {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s notification of %s finished: %+v", kind, id, ts.appointment(t, id).Notifications)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReminderArrivesOnceAcrossARestart(t *testing.T) {
	mb := startMailbox(t)
	cfg := reminderConfig(t, mb)
	first, stop := startStoppableServer(t, cfg)

	now := time.Now()
	soon := first.bookFor(t, now.Add(4*time.Second), api.Customer{Name: "Jonas", Email: "jonas@example.com", Language: "de"})
	first.bookFor(t, now.Add(14*time.Second), api.Customer{Name: "Léa", Email: "lea@example.com", Language: "fr"})

	t.Run("the reminder arrives lead before the start, in the customer's language, with a link", func(t *testing.T) {
		m := mb.waitFor(t, "reminding Jonas", 15*time.Second, kindTo("reminder", "jonas@example.com"))
		if early := soon.Start.Add(-testReminderLead).Sub(m.At); early > 200*time.Millisecond {
			t.Errorf("the reminder came %v early", early)
		}
		if !strings.HasPrefix(m.Subject, "Erinnerung: Ihr Videotermin") || m.Language != "de" || !strings.Contains(m.Text, "Jonas") {
			t.Errorf("subject %q, language %q, text:\n%s", m.Subject, m.Language, m.Text)
		}
		link := m.Link()
		claims, err := first.issuer.VerifyLink(linkToken(link))
		if err != nil || claims.Subject != soon.SessionID || claims.Role != auth.RoleCustomer {
			t.Fatalf("link %q: %+v %v", link, claims, err)
		}
		if status, _ := pageStatus(t, link); status != http.StatusOK {
			t.Fatalf("the reminder's link opens the page with %d", status)
		}
		if n := first.waitNotification(t, soon.ID, "reminder"); n.State != "sent" || n.ID != soon.ID+".reminder.email.1" {
			t.Fatalf("reminder status %+v", n)
		}
	})

	stop()
	second, _ := startStoppableServer(t, cfg) // same data directory

	t.Run("after a restart the pending reminder still comes", func(t *testing.T) {
		m := mb.waitFor(t, "reminding Léa", 20*time.Second, kindTo("reminder", "lea@example.com"))
		if !strings.HasPrefix(m.Subject, "Rappel : votre rendez-vous vidéo") || !strings.Contains(m.Link(), second.URL+"/c/") {
			t.Fatalf("subject %q, link %q", m.Subject, m.Link())
		}
	})

	t.Run("and the one sent before the restart is not sent again", func(t *testing.T) {
		// Léa's reminder was due after Jonas's, so the restarted node has looked at Jonas's by now.
		if got := mb.all(kindTo("reminder", "jonas@example.com")); len(got) != 1 {
			t.Fatalf("%d reminders to Jonas", len(got))
		}
		if got := notificationsOf(second.appointment(t, soon.ID), "reminder"); len(got) != 1 {
			t.Fatalf("reminders on the appointment: %+v", got)
		}
		if got := mb.all(kindTo("reminder", "lea@example.com")); len(got) != 1 {
			t.Fatalf("%d reminders to Léa", len(got))
		}
	})
}

func TestRemindersFollowReschedulesAndCancellations(t *testing.T) {
	mb := startMailbox(t)
	ts, _ := startStoppableServer(t, reminderConfig(t, mb))
	now := time.Now()

	moved := ts.bookFor(t, now.Add(5*time.Second), api.Customer{Name: "Mo", Email: "mo@example.com"})
	newStart, newEnd := now.Add(9*time.Second), now.Add(39*time.Second)
	var got api.Appointment
	if resp := ts.do(t, "PATCH", "/v1/appointments/"+moved.ID, ts.APIKey, api.UpdateAppointment{Start: &newStart, End: &newEnd}, &got); resp.StatusCode != 200 || got.Revision != 2 {
		t.Fatalf("reschedule: %d %+v", resp.StatusCode, got)
	}
	cancelled := ts.bookFor(t, now.Add(5*time.Second), api.Customer{Name: "Cy", Email: "cy@example.com"})
	if resp := ts.do(t, "DELETE", "/v1/appointments/"+cancelled.ID, ts.APIKey, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("cancel: %d", resp.StatusCode)
	}
	inside := ts.bookFor(t, now.Add(time.Second), api.Customer{Name: "In", Email: "in@example.com"})
	ts.bookFor(t, now.Add(5*time.Second), api.Customer{Name: "Kim", Email: "kim@example.com"})

	t.Run("a rescheduled appointment is reminded for its new time, once", func(t *testing.T) {
		m := mb.waitFor(t, "reminding Mo", 15*time.Second, kindTo("reminder", "mo@example.com"))
		if !strings.Contains(m.MessageID, moved.ID+".reminder.email.2@") {
			t.Fatalf("Message-ID %q: not the reminder of revision 2", m.MessageID)
		}
		if early := newStart.Add(-testReminderLead).Sub(m.At); early > 200*time.Millisecond {
			t.Fatalf("reminded %v before the new time's reminder was due (the old time's?)", early)
		}
		ts.waitNotification(t, moved.ID, "reminder")
		rem := notificationsOf(ts.appointment(t, moved.ID), "reminder")
		if len(rem) != 1 || rem[0].ID != moved.ID+".reminder.email.2" || rem[0].State != "sent" {
			t.Fatalf("reminders on the appointment: %+v", rem)
		}
	})

	t.Run("a cancelled appointment, and one booked inside the lead time, get none", func(t *testing.T) {
		// Kim's reminder was due with Cy's and after In's: once it is here, theirs would be too.
		mb.waitFor(t, "reminding Kim", 15*time.Second, kindTo("reminder", "kim@example.com"))
		for _, a := range []api.Appointment{cancelled, inside} {
			if got := mb.all(kindTo("reminder", a.Customer.Email)); len(got) != 0 {
				t.Errorf("%s got a reminder: %+v", a.Customer.Name, got)
			}
			if got := notificationsOf(ts.appointment(t, a.ID), "reminder"); len(got) != 0 {
				t.Errorf("%s's appointment shows reminders: %+v", a.Customer.Name, got)
			}
		}
		if got := mb.all(kindTo("reminder", "mo@example.com")); len(got) != 1 {
			t.Errorf("%d reminders to Mo", len(got))
		}
	})
}

func TestReminderQueuedBeforeACancellationIsSkipped(t *testing.T) {
	mb := startMailbox(t)
	ts, _ := startStoppableServer(t, reminderConfig(t, mb))
	// The provider refuses reminders for a while, so the first one waits for a retry.
	mb.setRefuse(func(to string) bool { return to == "ola@example.com" })
	a := ts.bookFor(t, time.Now().Add(4*time.Second), api.Customer{Name: "Ola", Email: "ola@example.com"})

	deadline := time.Now().Add(15 * time.Second)
	for {
		rem := notificationsOf(ts.appointment(t, a.ID), "reminder")
		if len(rem) == 1 && rem[0].Attempts >= 1 && rem[0].State == "queued" && rem[0].LastError != "" {
			t.Logf("after a provider failure the appointment shows: %+v", rem[0])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failed attempt never showed: %+v", rem)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp := ts.do(t, "DELETE", "/v1/appointments/"+a.ID, ts.APIKey, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("cancel: %d", resp.StatusCode)
	}
	mb.setRefuse(nil)

	n := ts.waitNotification(t, a.ID, "reminder")
	if n.State != "skipped" || !strings.Contains(n.LastError, "cancelled") {
		t.Fatalf("reminder %+v, want skipped because the appointment was cancelled", n)
	}
	if got := mb.all(kindTo("reminder", "ola@example.com")); len(got) != 0 {
		t.Fatalf("the reminder went out after all: %+v", got)
	}
	// The cancellation itself reached the customer once the provider was back.
	mb.waitFor(t, "telling Ola of the cancellation", 15*time.Second, kindTo("cancelled", "ola@example.com"))
}

// reminderNATS is a nats-server with JetStream that several nodes share over TCP.
func reminderNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{ServerName: "shared", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready within 10s")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return "nats://" + ns.Addr().(*net.TCPAddr).String()
}

func TestThreeNodesSendEachReminderOnce(t *testing.T) {
	mb := startMailbox(t)
	url := reminderNATS(t)
	var nodes []*testServer
	for i := range 3 {
		cfg := reminderConfig(t, mb)
		cfg.NATSURL, cfg.NodeID = url, fmt.Sprintf("node-%d", i)
		ts, _ := startStoppableServer(t, cfg)
		nodes = append(nodes, ts)
	}
	start := time.Now().Add(4 * time.Second)
	var booked []api.Appointment
	for i := range 6 {
		email := fmt.Sprintf("c%d@example.com", i)
		booked = append(booked, nodes[i%3].bookFor(t, start.Add(time.Duration(i)*200*time.Millisecond),
			api.Customer{Name: "C", Email: email}))
	}
	for _, a := range booked {
		mb.waitFor(t, "reminding "+a.Customer.Email, 15*time.Second, kindTo("reminder", a.Customer.Email))
	}
	for _, a := range booked {
		n := nodes[0].waitNotification(t, a.ID, "reminder")
		if got := mb.all(kindTo("reminder", a.Customer.Email)); len(got) != 1 || n.State != "sent" || n.Attempts != 1 {
			t.Errorf("%s: %d reminders, status %+v", a.Customer.Email, len(got), n)
		}
	}
}
