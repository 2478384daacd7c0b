package signaling

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/webclient/browsertest"
)

// signInConsole opens the console in a new tab and signs in.
func signInConsole(t *testing.T, ts *testServer, browser *browsertest.Browser, name, email, password string) context.Context {
	t.Helper()
	tab := browser.NewNamedTab(t, name)
	must(t, "open console", browsertest.Navigate(tab, ts.URL+"/console/"))
	must(t, "email", browsertest.SetValue(tab, `[data-testid="login-email"]`, email))
	must(t, "password", browsertest.SetValue(tab, `[data-testid="login-password"]`, password))
	must(t, "sign in", browsertest.Click(tab, `[data-testid="login"]`))
	must(t, "team panel connected", browsertest.WaitFor(tab, `document.querySelector('[data-testid="team-panel"]')?.dataset.connected === 'true'`, 15*time.Second))
	return tab
}

func TestBrowserTwoConsolesPresenceChatAndLiveQueue(t *testing.T) {
	ts := newTestServer(t)
	browser := browsertest.New(t)
	ctx := context.Background()
	orgID := ts.Bootstrap().OrganizationID
	people := map[string]*rooms.Specialist{}
	for _, name := range []string{"Ann", "Bob"} {
		hash, _ := auth.HashPassword("a long password of " + name)
		sp, err := ts.rooms.CreateSpecialist(ctx, orgID, name+"@example.com", name, hash, rooms.StaffSpecialist)
		if err != nil {
			t.Fatal(err)
		}
		people[name] = sp
	}
	ann, bob := people["Ann"], people["Bob"]
	annTab := signInConsole(t, ts, browser, "ann", "Ann@example.com", "a long password of Ann")
	bobTab := signInConsole(t, ts, browser, "bob", "Bob@example.com", "a long password of Bob")

	presence := func(tab context.Context, sp *rooms.Specialist, status string) string {
		return fmt.Sprintf(`document.querySelector('[data-testid="presence-item"][data-specialist-id="%s"]')?.dataset.status === %q`, sp.ID, status)
	}
	must(t, "ann sees bob available", browsertest.WaitFor(annTab, presence(annTab, bob, "available"), 15*time.Second))
	must(t, "bob chooses away", browsertest.SetValue(bobTab, `[data-testid="presence-select"]`, "away"))
	must(t, "ann sees bob away", browsertest.WaitFor(annTab, presence(annTab, bob, "away"), 15*time.Second))

	// A one-to-one message: bob's console counts it unread until he opens the conversation.
	must(t, "ann opens the conversation with bob", browsertest.Click(annTab, fmt.Sprintf(`[data-testid="team-channel"][data-channel="%s"]`, bob.ID)))
	must(t, "ann types", browsertest.SetValue(annTab, `[data-testid="team-chat-input"]`, "Can you take the next customer?"))
	must(t, "ann sends", browsertest.Click(annTab, `[data-testid="team-chat-send"]`))
	annChannel := fmt.Sprintf(`document.querySelector('[data-testid="team-channel"][data-channel="%s"]')`, ann.ID)
	must(t, "bob's console shows one unread message from ann", browsertest.WaitFor(bobTab,
		annChannel+`?.dataset.unread === '1' && document.querySelector('[data-testid="team-unread-total"]').textContent === '1' && !document.querySelector('[data-testid="team-unread-total"]').hidden`, 15*time.Second))
	must(t, "bob opens it", browsertest.Click(bobTab, fmt.Sprintf(`[data-testid="team-channel"][data-channel="%s"]`, ann.ID)))
	must(t, "bob reads the message", browsertest.WaitFor(bobTab,
		`[...document.querySelectorAll('[data-testid="team-message"]')].some((m) => m.textContent.includes('next customer')) && `+annChannel+`?.dataset.unread === '0'`, 10*time.Second))
	must(t, "the server keeps it read", teamEventually(10*time.Second, func() bool {
		var list teamMessageList
		ts.do(t, "GET", "/v1/team/messages", mustToken(t, ts, bob), nil, &list)
		return list.Unread[ann.ID] == 0 && len(list.Data) == 1
	}))

	// A customer starts waiting: both consoles show them live; ann admits from the queue.
	s := ts.createSession(t)
	customer := browser.NewNamedTab(t, "customer")
	must(t, "open customer link", browsertest.Navigate(customer, s.CustomerURL))
	must(t, "customer page idle", browsertest.WaitState(customer, "idle", 10*time.Second))
	must(t, "type name", browsertest.SetValue(customer, `[data-testid="name"]`, "Carl"))
	must(t, "join", browsertest.Click(customer, `[data-testid="join"]`))
	must(t, "customer waits", browsertest.WaitState(customer, "waiting", 10*time.Second))
	carlQueued := `[...document.querySelectorAll('[data-testid="org-queue-item"]')].some((i) => i.textContent.includes('Carl') && i.textContent.includes('Ad hoc'))`
	must(t, "carl appears in bob's queue", browsertest.WaitFor(bobTab, carlQueued, 15*time.Second))
	must(t, "carl appears in ann's queue", browsertest.WaitFor(annTab, carlQueued, 15*time.Second))
	must(t, "ann admits carl from the queue", browsertest.Click(annTab, `[data-testid="org-queue-admit"]`))
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	must(t, "ann's console opens the session", browsertest.WaitState(annTab, "in-call", 15*time.Second))
	must(t, "the queue empties for bob", browsertest.WaitFor(bobTab, `document.querySelector('[data-testid="org-queue-count"]').textContent === '0'`, 15*time.Second))
	must(t, "bob sees ann busy", browsertest.WaitFor(bobTab, presence(bobTab, ann, "busy"), 15*time.Second))
	for _, tab := range []context.Context{annTab, bobTab, customer} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}

// mustToken is a console token for a specialist.
func mustToken(t *testing.T, ts *testServer, sp *rooms.Specialist) string {
	t.Helper()
	token, _, err := ts.issuer.IssueConsole(sp.OrgID, sp.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// teamEventually polls cond until it holds or the time is up.
func teamEventually(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
