package notify

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-video/assist/rooms/bus"
)

const clinicFrom = "Example Clinic <no-reply@clinic.example>"

func newNotifier(t *testing.T, js jetstream.JetStream, cfg Config) *Notifier {
	t.Helper()
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return 50 * time.Millisecond }
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := New(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// running runs n until the returned stop is called (or the test ends); stop returns Run's result.
func running(t *testing.T, n *Notifier) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(15 * time.Second):
				t.Error("Run did not return within 15s of its context ending")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func openTestBus(t *testing.T) *bus.Bus {
	b := openBus(t, t.TempDir())
	t.Cleanup(b.Close)
	return b
}

func enqueue(t *testing.T, n *Notifier, m Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
}

func statuses(t *testing.T, n *Notifier, appointmentID string) []Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := n.Statuses(ctx, appointmentID)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func statusOf(t *testing.T, n *Notifier, m Message) (Status, bool) {
	t.Helper()
	for _, st := range statuses(t, n, m.AppointmentID) {
		if st.ID == m.ID {
			return st, true
		}
	}
	return Status{}, false
}

// waitState waits until m reaches a final state and checks that it is want.
func waitState(t *testing.T, n *Notifier, m Message, want State) Status {
	t.Helper()
	var st Status
	eventually(t, 10*time.Second, fmt.Sprintf("%s to be %s", m.ID, want), func() bool {
		st, _ = statusOf(t, n, m)
		return st.State == StateSent || st.State == StateFailed || st.State == StateSkipped
	})
	if st.State != want {
		t.Fatalf("%s is %s, want %s: %+v", m.ID, st.State, want, st)
	}
	return st
}

// queueState is what JetStream still holds: messages in the stream, and messages the consumer
// has handed out and not had acknowledged.
func queueState(t *testing.T, js jetstream.JetStream) (msgs uint64, ackPending int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, StreamNotify)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Consumer(ctx, ConsumerSender)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return si.State.Msgs, ci.NumAckPending
}

func waitQueueEmpty(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	eventually(t, 10*time.Second, "the queue to be empty", func() bool {
		msgs, pending := queueState(t, js)
		return msgs == 0 && pending == 0
	})
}

func emailMessage(id, appointment string) Message {
	m := testMessage(id, ChannelEmail, KindBooked, "en")
	m.AppointmentID = appointment
	return m
}

func TestNotifierSendsEmailThroughTheQueue(t *testing.T) {
	pki := newTestPKI(t)
	srv := startSMTP(t, pki.server)
	sender, err := NewSMTPSender(srv.config(pki))
	if err != nil {
		t.Fatal(err)
	}
	b := openTestBus(t)
	n := newNotifier(t, b.JS, Config{Providers: StaticProviders(sender, nil, clinicFrom)})
	running(t, n)

	m := testMessage("apt_1.booked.email.1", ChannelEmail, KindBooked, "de")
	enqueue(t, n, m)
	got := srv.nextMail(t)

	if !got.TLS || got.AuthUser != smtpUser {
		t.Errorf("tls=%v auth=%q", got.TLS, got.AuthUser)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(got.Msg.Header.Get("Subject"))
	if subject != "Ihr Videotermin bei Example Clinic ist gebucht" {
		t.Errorf("subject %q", subject)
	}
	if id := got.Msg.Header.Get("Message-Id"); id != "<apt_1.booked.email.1@clinic.example>" {
		t.Errorf("Message-ID %q", id)
	}
	text := readParts(t, got.Msg)["text/plain"]
	if !strings.Contains(text, "Guten Tag Ann Martin,") || !strings.Contains(text, m.Data.Link) {
		t.Errorf("text:\n%s", text)
	}

	st := waitState(t, n, m, StateSent)
	if st.Attempts != 1 || st.SentAt.IsZero() || st.LastError != "" || !st.LeaseUntil.IsZero() ||
		st.OrgID != "org_test" || st.Channel != ChannelEmail || st.Kind != KindBooked || st.To != m.To {
		t.Errorf("status %+v", st)
	}
	waitQueueEmpty(t, b.JS)
}

func TestNotifierSMSRetriesAndFailures(t *testing.T) {
	adapters := []struct {
		name   string
		start  func(t *testing.T, script ...int) *smsProvider
		sender func(t *testing.T, p *smsProvider) SMSSender
		reason string // what the provider says about the number it refuses
	}{
		{"twilio", startTwilio, func(t *testing.T, p *smsProvider) SMSSender { return p.twilio(t) }, "not a valid phone number"},
		{"webhook", startWebhook, func(t *testing.T, p *smsProvider) SMSSender { return p.webhook(t, webhookSecret) }, "on the block list"},
	}
	for _, a := range adapters {
		t.Run(a.name+": a provider that fails twice with 503 gets the message on the third attempt", func(t *testing.T) {
			p := a.start(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable)
			n := newNotifier(t, openTestBus(t).JS, Config{Providers: StaticProviders(nil, a.sender(t, p), "")})
			running(t, n)
			m := testMessage("apt_1.reminder.sms.1", ChannelSMS, KindReminder, "fr")
			enqueue(t, n, m)

			st := waitState(t, n, m, StateSent)
			if st.Attempts != 3 || st.LastError != "" {
				t.Errorf("status %+v", st)
			}
			reqs, problems := p.seen()
			if len(problems) > 0 || len(reqs) != 3 {
				t.Fatalf("%d requests; problems %v", len(reqs), problems)
			}
			for _, r := range reqs {
				if r.To != "+33612345678" || r.Body != reqs[0].Body ||
					!strings.HasPrefix(r.Body, "Example Clinic : rappel de votre rendez-vous vidéo le lundi 2 mars 2026") ||
					!strings.HasSuffix(r.Body, "Lien : "+m.Data.Link) {
					t.Errorf("request %+v", r)
				}
			}
		})
		t.Run(a.name+": a 400 fails at once with the provider's reason", func(t *testing.T) {
			p := a.start(t, http.StatusBadRequest)
			b := openTestBus(t)
			n := newNotifier(t, b.JS, Config{Providers: StaticProviders(nil, a.sender(t, p), "")})
			running(t, n)
			m := testMessage("apt_1.booked.sms.1", ChannelSMS, KindBooked, "es")
			enqueue(t, n, m)

			st := waitState(t, n, m, StateFailed)
			if st.Attempts != 1 || !strings.Contains(st.LastError, "HTTP 400") || !strings.Contains(st.LastError, a.reason) {
				t.Errorf("status %+v", st)
			}
			waitQueueEmpty(t, b.JS) // terminated: nothing left to try again
			if reqs, problems := p.seen(); len(reqs) != 1 || len(problems) > 0 {
				t.Fatalf("%d requests; problems %v", len(reqs), problems)
			}
		})
	}
}

func TestNotifierGivesUpAfterMaxAttempts(t *testing.T) {
	p := startTwilio(t, 500, 500, 500, 500)
	n := newNotifier(t, openTestBus(t).JS, Config{Providers: StaticProviders(nil, p.twilio(t), ""), MaxAttempts: 3})
	running(t, n)
	m := testMessage("apt_1.booked.sms.1", ChannelSMS, KindBooked, "en")
	enqueue(t, n, m)
	st := waitState(t, n, m, StateFailed)
	if st.Attempts != 3 || !strings.Contains(st.LastError, "HTTP 500") {
		t.Fatalf("status %+v", st)
	}
	if reqs, _ := p.seen(); len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
}

func TestNotifierFailsWhatCannotBeSent(t *testing.T) {
	pki := newTestPKI(t)
	srv := startSMTP(t, pki.server)
	sender, err := NewSMTPSender(srv.config(pki))
	if err != nil {
		t.Fatal(err)
	}
	srv.setReject("gone@example.org", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"})
	n := newNotifier(t, openTestBus(t).JS, Config{Providers: StaticProviders(sender, nil, clinicFrom)})
	running(t, n)

	t.Run("a channel the organisation has no provider for", func(t *testing.T) {
		m := testMessage("apt_1.booked.sms.1", ChannelSMS, KindBooked, "en")
		enqueue(t, n, m)
		if st := waitState(t, n, m, StateFailed); !strings.Contains(st.LastError, ErrNoProvider.Error()) {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("a message that expired in the queue", func(t *testing.T) {
		m := testMessage("apt_1.reminder.email.1", ChannelEmail, KindReminder, "en")
		m.Expires = time.Now().Add(-time.Second)
		enqueue(t, n, m)
		if st := waitState(t, n, m, StateFailed); st.Attempts != 0 || !strings.Contains(st.LastError, "expired") {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("a recipient the mail server refuses", func(t *testing.T) {
		m := testMessage("apt_1.cancelled.email.1", ChannelEmail, KindCancelled, "en")
		m.To = "gone@example.org"
		enqueue(t, n, m)
		if st := waitState(t, n, m, StateFailed); st.Attempts != 1 || !strings.Contains(st.LastError, "no such mailbox") {
			t.Fatalf("status %+v", st)
		}
	})
	if len(srv.all()) != 0 {
		t.Fatalf("%d mails went out", len(srv.all()))
	}
}

func TestEnqueueRefusesBadMessages(t *testing.T) {
	n := newNotifier(t, openTestBus(t).JS, Config{Providers: StaticProviders(nil, nil, "")})
	cases := []struct {
		name   string
		change func(m *Message)
	}{
		{"an id with an empty token", func(m *Message) { m.ID = "apt_1..booked" }},
		{"an id with a space", func(m *Message) { m.ID = "apt 1" }},
		{"an org id with a dot", func(m *Message) { m.OrgID = "org.a" }},
		{"no appointment", func(m *Message) { m.AppointmentID = "" }},
		{"an unknown kind", func(m *Message) { m.Kind = "moved" }},
		{"an unknown channel", func(m *Message) { m.Channel = "pigeon" }},
		{"an address with a display name", func(m *Message) { m.To = "Ann <ann@example.org>" }},
		{"a phone number for email", func(m *Message) { m.To = "+33612345678" }},
		{"a phone number that is not E.164", func(m *Message) { m.Channel, m.To = ChannelSMS, "06 12 34 56 78" }},
		{"an unknown time zone", func(m *Message) { m.Data.TimeZone = "Mars/Olympus" }},
		{"a link that is not http", func(m *Message) { m.Data.Link = "javascript:alert(1)" }},
		{"no start", func(m *Message) { m.Data.Start = time.Time{} }},
		{"an end before the start", func(m *Message) { m.Data.End = m.Data.Start.Add(-time.Hour) }},
		{"a language that is not a tag", func(m *Message) { m.Language = "français" }},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			m := testMessage("apt_1.booked.email.1", ChannelEmail, KindBooked, "en")
			c.change(&m)
			if err := n.Enqueue(context.Background(), m); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if msgs, _ := queueState(t, n.js); msgs != 0 {
		t.Fatalf("%d messages were queued", msgs)
	}
}

func TestSameIDIsSentOnce(t *testing.T) {
	pki := newTestPKI(t)
	srv := startSMTP(t, pki.server)
	sender, err := NewSMTPSender(srv.config(pki))
	if err != nil {
		t.Fatal(err)
	}
	b := openTestBus(t)
	n := newNotifier(t, b.JS, Config{Providers: StaticProviders(sender, nil, clinicFrom)})
	m := emailMessage("apt_d.booked.email.1", "apt_d")

	enqueue(t, n, m)
	enqueue(t, n, m)
	if msgs, _ := queueState(t, b.JS); msgs != 1 {
		t.Fatalf("the stream holds %d copies", msgs)
	}
	if list := statuses(t, n, "apt_d"); len(list) != 1 || list[0].State != StateQueued {
		t.Fatalf("statuses %+v", list)
	}
	running(t, n)
	waitState(t, n, m, StateSent)
	waitQueueEmpty(t, b.JS)

	t.Run("enqueuing it again after it was sent does nothing", func(t *testing.T) {
		enqueue(t, n, m)
		if msgs, _ := queueState(t, b.JS); msgs != 0 {
			t.Fatalf("the stream holds %d messages", msgs)
		}
	})
	t.Run("a copy that reaches the queue anyway is dropped", func(t *testing.T) {
		// As if published again after the stream's de-duplication window.
		data := fmt.Appendf(nil, `{"id":%q,"org_id":"org_test","appointment_id":"apt_d","channel":"email","kind":"booked","to":"ann@example.org","data":{"start":"2026-03-02T13:30:00Z"}}`, m.ID)
		if _, err := b.JS.Publish(context.Background(), "assist.notify.org_test.email", data, jetstream.WithMsgID("another-publish")); err != nil {
			t.Fatal(err)
		}
		waitQueueEmpty(t, b.JS)
	})
	if got := len(srv.all()); got != 1 {
		t.Fatalf("%d mails for one notification", got)
	}
	if list := statuses(t, n, "apt_d"); len(list) != 1 || list[0].State != StateSent || list[0].Attempts != 1 {
		t.Fatalf("statuses %+v", list)
	}
	if list := statuses(t, n, "apt_other"); len(list) != 0 {
		t.Fatalf("another appointment lists %+v", list)
	}
	if _, err := n.Statuses(context.Background(), "apt.*"); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("a wildcard appointment id: %v", err)
	}
}

func TestRestartMidwaySendsEachMessageOnce(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t)
	srv := startSMTP(t, pki.server)
	held, release := make(chan struct{}), make(chan struct{})
	srv.setOnData(func(n int) {
		if n == 2 { // hold the second mail in the middle of DATA
			close(held)
			<-release
		}
	})
	sender, err := NewSMTPSender(srv.config(pki))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	for i := range 5 {
		msgs = append(msgs, emailMessage(fmt.Sprintf("apt_r.booked.email.%d", i), "apt_r"))
	}

	b1 := openBus(t, dir)
	n1 := newNotifier(t, b1.JS, Config{Providers: StaticProviders(sender, nil, clinicFrom), Concurrency: 1})
	for _, m := range msgs {
		enqueue(t, n1, m)
	}
	enqueue(t, n1, msgs[0]) // a retried enqueue
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- n1.Run(ctx) }()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the second mail never started")
	}
	cancel() // the stop comes while the second mail is in the middle of DATA...
	close(release)
	select { // ...and Run ends once that mail is through, starting no other
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s of its context ending")
	}
	// Run returned only after the send in flight was recorded.
	sent := 0
	for _, st := range statuses(t, n1, "apt_r") {
		if st.State == StateSent {
			sent++
		}
	}
	if sent != 2 || len(srv.all()) != 2 {
		t.Fatalf("after the stop: %d recorded sent, %d mails", sent, len(srv.all()))
	}
	b1.Close()

	b2 := openBus(t, dir)
	t.Cleanup(b2.Close)
	n2 := newNotifier(t, b2.JS, Config{Providers: StaticProviders(sender, nil, clinicFrom), Concurrency: 2})
	running(t, n2)
	for _, m := range msgs {
		waitState(t, n2, m, StateSent)
	}
	waitQueueEmpty(t, b2.JS)

	var ids []string
	for _, got := range srv.all() {
		ids = append(ids, got.Msg.Header.Get("Message-Id"))
	}
	slices.Sort(ids)
	var want []string
	for _, m := range msgs {
		want = append(want, "<"+m.ID+"@clinic.example>")
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("mails received:\n%v\nwant each once:\n%v", ids, want)
	}
}

func TestCrashBetweenSendAndAckDoesNotResend(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t)
	srv := startSMTP(t, pki.server)
	sender, err := NewSMTPSender(srv.config(pki))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Providers: StaticProviders(sender, nil, clinicFrom), AckWait: time.Second}
	m := emailMessage("apt_c.booked.email.1", "apt_c")

	b1 := openBus(t, dir)
	n1 := newNotifier(t, b1.JS, cfg)
	crashed := make(chan struct{})
	n1.afterSent = func(Message) {
		b1.Conn.Close() // the connection dies after "sent" is stored, before the ack
		close(crashed)
	}
	stop := running(t, n1)
	enqueue(t, n1, m)
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("the notification was never sent")
	}
	t.Logf("Run after the crash: %v", stop())
	b1.Close()

	b2 := openBus(t, dir)
	t.Cleanup(b2.Close)
	if msgs, _ := queueState(t, b2.JS); msgs != 1 {
		t.Fatalf("the unacknowledged message should still be queued; the stream holds %d", msgs)
	}
	n2 := newNotifier(t, b2.JS, cfg)
	running(t, n2)
	waitQueueEmpty(t, b2.JS) // redelivered after AckWait, found sent, acknowledged

	if got := len(srv.all()); got != 1 {
		t.Fatalf("%d mails for one notification", got)
	}
	if st, _ := statusOf(t, n2, m); st.State != StateSent || st.Attempts != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if got := DefaultBackoff(i + 1); got != w {
			t.Errorf("attempt %d: %v, want %v", i+1, got, w)
		}
	}
	if DefaultBackoff(1000) != 5*time.Minute || DefaultBackoff(0) != 2*time.Second {
		t.Error("out of range attempts")
	}
}

func TestNotificationsNoLongerWantedAreSkipped(t *testing.T) {
	pki := newTestPKI(t)
	srv := startSMTP(t, pki.server)
	sender, err := NewSMTPSender(srv.config(pki))
	if err != nil {
		t.Fatal(err)
	}
	b := openTestBus(t)
	var mu sync.Mutex
	cancelled := map[string]bool{"apt_gone": true}
	n := newNotifier(t, b.JS, Config{Providers: StaticProviders(sender, nil, clinicFrom),
		StillWanted: func(_ context.Context, m Message) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			if cancelled[m.AppointmentID] {
				return "the appointment was cancelled", nil
			}
			return "", nil
		}})
	running(t, n)

	gone := emailMessage("apt_gone.reminder.email.1", "apt_gone")
	kept := emailMessage("apt_kept.reminder.email.1", "apt_kept")
	enqueue(t, n, gone)
	enqueue(t, n, kept)
	st := waitState(t, n, gone, StateSkipped)
	if st.LastError != "the appointment was cancelled" || st.Attempts != 0 {
		t.Fatalf("skipped status %+v", st)
	}
	waitState(t, n, kept, StateSent)
	if got := srv.nextMail(t); !strings.Contains(got.Msg.Header.Get("Message-Id"), "apt_kept") {
		t.Fatalf("sent the wrong one: %v", got.Msg.Header)
	}
	waitQueueEmpty(t, b.JS)
	if all := srv.all(); len(all) != 1 {
		t.Fatalf("%d emails, want only the wanted one", len(all))
	}
	enqueue(t, n, gone) // enqueuing a skipped one again leaves it skipped
	if st, _ := statusOf(t, n, gone); st.State != StateSkipped {
		t.Fatalf("after a second enqueue: %+v", st)
	}
}
