package signaling

import (
	"context"
	"testing"
	"time"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/webclient/browsertest"
)

// These tests drive the real pages in headless Chromium (fake camera and microphone) against a
// whole in-process Assist node.

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// customerWaits opens a customer link in a new tab, joins, and waits in the waiting room.
func customerWaits(t *testing.T, browser *browsertest.Browser, link string) context.Context {
	t.Helper()
	customer := browser.NewNamedTab(t, "customer")
	must(t, "open customer link", browsertest.Navigate(customer, link))
	must(t, "join", browsertest.Click(customer, `[data-testid="join"]`))
	must(t, "customer waits", browsertest.WaitState(customer, "waiting", 10*time.Second))
	return customer
}

// specialistAdmits opens a specialist link in a new tab and admits the waiting customer.
func specialistAdmits(t *testing.T, browser *browsertest.Browser, link string) context.Context {
	t.Helper()
	specialist := browser.NewNamedTab(t, "specialist")
	must(t, "open specialist link", browsertest.Navigate(specialist, link))
	admit := `[data-testid="admit"]`
	must(t, "waiting customer appears in the console", browsertest.WaitVisible(specialist, admit, 15*time.Second))
	must(t, "admit", browsertest.Click(specialist, admit))
	return specialist
}

func TestBrowsersCallThroughTheSFU(t *testing.T) {
	ts := newTestServer(t)
	browser := browsertest.New(t)
	s := ts.createSession(t)

	customer := browser.NewNamedTab(t, "customer")
	must(t, "open customer link", browsertest.Navigate(customer, s.CustomerURL))
	must(t, "customer page idle", browsertest.WaitState(customer, "idle", 10*time.Second))
	must(t, "type name", browsertest.SetValue(customer, `[data-testid="name"]`, "Ann"))
	must(t, "join", browsertest.Click(customer, `[data-testid="join"]`))
	must(t, "customer waits", browsertest.WaitState(customer, "waiting", 10*time.Second))
	if got := ts.getSession(t, s.ID); len(got.Participants) != 1 || got.Participants[0].State != "waiting" || len(got.Participants[0].Tracks) != 0 {
		t.Fatalf("a waiting customer must hold no media: %+v", got.Participants)
	}

	specialist := specialistAdmits(t, browser, s.SpecialistURL)
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	must(t, "customer decodes the specialist's video", browsertest.WaitFramesDecoded(customer, 10, 30*time.Second))
	must(t, "specialist decodes the customer's video", browsertest.WaitFramesDecoded(specialist, 10, 30*time.Second))

	got := ts.getSession(t, s.ID)
	if got.State != api.SessionActive {
		t.Fatalf("state = %s", got.State)
	}
	forwarded := map[string]uint64{}
	for _, p := range got.Participants {
		for _, tr := range p.Tracks {
			if tr.Kind == "video" {
				forwarded[p.Role] += tr.PacketsForwarded
			}
		}
	}
	if forwarded["customer"] == 0 || forwarded["specialist"] == 0 {
		t.Fatalf("video packets forwarded by role: %v", forwarded)
	}

	must(t, "end", browsertest.Click(specialist, `[data-testid="end"]`))
	must(t, "confirm end", browsertest.Click(specialist, `[data-testid="end-confirm"]`))
	must(t, "customer sees the end", browsertest.WaitState(customer, "ended", 10*time.Second))
	if got := ts.getSession(t, s.ID); got.State != api.SessionEnded {
		t.Fatalf("state after end = %s", got.State)
	}
	for _, tab := range []context.Context{customer, specialist} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}

func TestBrowserCustomerDenied(t *testing.T) {
	ts := newTestServer(t)
	browser := browsertest.New(t)
	s := ts.createSession(t)

	customer := customerWaits(t, browser, s.CustomerURL)

	specialist := browser.NewNamedTab(t, "specialist")
	must(t, "open specialist link", browsertest.Navigate(specialist, s.SpecialistURL))
	must(t, "queue shows the customer", browsertest.WaitVisible(specialist, `[data-testid="deny"]`, 15*time.Second))
	must(t, "deny", browsertest.Click(specialist, `[data-testid="deny"]`))
	must(t, "reason", browsertest.SetValue(specialist, `[data-testid="deny-reason"]`, "Please call the billing line"))
	must(t, "confirm deny", browsertest.Click(specialist, `[data-testid="deny-confirm"]`))
	must(t, "customer is turned away", browsertest.WaitState(customer, "denied", 10*time.Second))
	msg, err := browsertest.Text(customer, `[data-testid="end-message"]`)
	must(t, "read message", err)
	if msg == "" {
		t.Fatal("the customer is not told why")
	}
	t.Logf("customer sees: %q", msg)
}

func TestBrowserConsoleSignInAndSession(t *testing.T) {
	ts := newTestServer(t)
	browser := browsertest.New(t)
	console := browser.NewNamedTab(t, "console")
	must(t, "open console", browsertest.Navigate(console, ts.URL+"/console/"))
	must(t, "email", browsertest.SetValue(console, `[data-testid="login-email"]`, testEmail))
	must(t, "password", browsertest.SetValue(console, `[data-testid="login-password"]`, testPassword))
	must(t, "sign in", browsertest.Click(console, `[data-testid="login"]`))
	must(t, "new session", browsertest.Click(console, `[data-testid="new-session"]`))
	must(t, "customer link shown", browsertest.WaitFor(console, `(document.querySelector('[data-testid="customer-link"]')?.value || document.querySelector('[data-testid="customer-link"]')?.textContent || '').includes('/c/')`, 10*time.Second))
	var list api.SessionList
	ts.do(t, "GET", "/v1/sessions", ts.APIKey, nil, &list)
	if len(list.Data) != 1 {
		t.Fatalf("sessions = %d, want the one the console created", len(list.Data))
	}
	must(t, "open it", browsertest.Click(console, `[data-testid="open-new-session"]`))
	must(t, "in the session", browsertest.WaitFor(console, `document.body.dataset.state === 'in-call' || document.body.dataset.state === 'waiting'`, 15*time.Second))
	got := ts.getSession(t, list.Data[0].ID)
	if len(got.Participants) != 1 || got.Participants[0].Role != "specialist" {
		t.Fatalf("participants = %+v", got.Participants)
	}
}
