package signaling

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/webclient/browsertest"
)

// A customer's whole way in Chromium: the appointment is booked through the API, the booking
// email arrives at a real SMTP server, and the link in it opens the call page.

// bookAndReadLink books an appointment starting soon for an email address and returns it with
// the link from the booking email the customer received.
func bookAndReadLink(t *testing.T, ts *testServer, mb *mailbox, name, email string) (api.Appointment, string) {
	t.Helper()
	a := ts.bookFor(t, time.Now().Add(time.Minute), api.Customer{Name: name, Email: email, Language: "en"})
	m := mb.waitFor(t, "booking "+name, 15*time.Second, kindTo("booked", email))
	if !strings.Contains(m.Subject, "is booked") || !strings.Contains(m.Text, name) {
		t.Fatalf("booking email: %q\n%s", m.Subject, m.Text)
	}
	link := m.Link()
	if link == "" || link != a.CustomerURL {
		t.Fatalf("the email's link %q is not the appointment's customer_url %q", link, a.CustomerURL)
	}
	return a, link
}

// customersOf is the session's customers as the API shows them.
func (ts *testServer) customersOf(t *testing.T, sessionID string) []api.Participant {
	t.Helper()
	var out []api.Participant
	for _, p := range ts.getSession(t, sessionID).Participants {
		if p.Role == "customer" {
			out = append(out, p)
		}
	}
	return out
}

func TestBrowserBookedCustomerFromEmailToCall(t *testing.T) {
	mb := startMailbox(t)
	cfg := testConfig(t)
	mb.configure(&cfg)
	ts := startTestServer(t, cfg)
	browser := browsertest.New(t)

	a, link := bookAndReadLink(t, ts, mb, "Ann", "ann@example.com")
	customer := customerWaits(t, browser, link)
	pos, err := browsertest.Text(customer, `[data-testid="queue-position"]`)
	must(t, "read the position", err)
	if !strings.Contains(pos, "next in line") {
		t.Fatalf("the waiting customer sees %q, want their position", pos)
	}
	specialist := specialistAdmits(t, browser, a.SpecialistURL)
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	must(t, "customer decodes the specialist's video", browsertest.WaitFramesDecoded(customer, 5, 30*time.Second))
	must(t, "specialist decodes the customer's video", browsertest.WaitFramesDecoded(specialist, 5, 30*time.Second))
	if got := ts.getSession(t, a.SessionID); got.State != api.SessionActive {
		t.Fatalf("session %s", got.State)
	}
	if n := ts.waitNotification(t, a.ID, "booked"); n.State != "sent" || n.To != "ann@example.com" {
		t.Fatalf("the appointment shows %+v", n)
	}
}

func TestBrowserBookedCustomerReloadsKeepsTheirPlaceThenIsDenied(t *testing.T) {
	mb := startMailbox(t)
	cfg := testConfig(t)
	mb.configure(&cfg)
	ts := startTestServer(t, cfg)
	browser := browsertest.New(t)

	a, link := bookAndReadLink(t, ts, mb, "Bob", "bob@example.com")
	customer := customerWaits(t, browser, link)
	before := ts.customersOf(t, a.SessionID)
	if len(before) != 1 || before[0].State != "waiting" {
		t.Fatalf("customers before the reload: %+v", before)
	}
	specialist := browser.NewNamedTab(t, "specialist")
	must(t, "open specialist link", browsertest.Navigate(specialist, a.SpecialistURL))
	must(t, "queue shows the customer", browsertest.WaitVisible(specialist, `[data-testid="deny"]`, 15*time.Second))

	t.Run("a customer who reloads keeps their place", func(t *testing.T) {
		must(t, "reload the customer page", chromedp.Do(customer, chromedp.Reload()))
		must(t, "join again", browsertest.Click(customer, `[data-testid="join"]`))
		must(t, "waiting again", browsertest.WaitState(customer, "waiting", 10*time.Second))
		after := ts.customersOf(t, a.SessionID)
		if len(after) != 1 || after[0].ID != before[0].ID || after[0].State != "waiting" {
			t.Fatalf("customers after the reload: %+v, want the same %s still waiting", after, before[0].ID)
		}
		must(t, "the console lists one waiting customer", browsertest.WaitFor(specialist,
			`document.querySelectorAll('[data-testid="deny"]').length === 1 && document.querySelector('[data-testid="queue-count"]').textContent.trim() === '1'`,
			10*time.Second))
	})

	t.Run("a denied customer sees the denied state", func(t *testing.T) {
		must(t, "deny", browsertest.Click(specialist, `[data-testid="deny"]`))
		must(t, "reason", browsertest.SetValue(specialist, `[data-testid="deny-reason"]`, "Please call us instead"))
		must(t, "confirm deny", browsertest.Click(specialist, `[data-testid="deny-confirm"]`))
		must(t, "customer is turned away", browsertest.WaitState(customer, "denied", 10*time.Second))
		msg, err := browsertest.Text(customer, `[data-testid="end-message"]`)
		must(t, "read message", err)
		if !strings.Contains(msg, "Please call us instead") {
			t.Fatalf("the customer sees %q, not the reason", msg)
		}
		if got := ts.customersOf(t, a.SessionID); len(got) != 1 || got[0].State != "denied" {
			t.Fatalf("customers after the denial: %+v", got)
		}
	})
}
