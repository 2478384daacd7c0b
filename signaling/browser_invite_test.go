package signaling

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/webclient/browsertest"
)

// consoleSignedIn opens the console in a new tab and signs in.
func consoleSignedIn(t *testing.T, ts *testServer, browser *browsertest.Browser, name, email, password string) context.Context {
	t.Helper()
	tab := browser.NewNamedTab(t, name)
	// Navigate by script: on a loaded machine the page's modules can take longer than
	// browsertest.Navigate waits for the load event.
	_, err := browsertest.Eval[bool](tab, fmt.Sprintf(`(location.href = %q, true)`, ts.URL+"/console/"))
	must(t, name+": open console", err)
	must(t, name+": sign-in form", browsertest.WaitVisible(tab, `[data-testid="login-email"]`, 90*time.Second))
	must(t, name+": email", browsertest.SetValue(tab, `[data-testid="login-email"]`, email))
	must(t, name+": password", browsertest.SetValue(tab, `[data-testid="login-password"]`, password))
	must(t, name+": sign in", browsertest.Click(tab, `[data-testid="login"]`))
	must(t, name+": signed in", browsertest.WaitVisible(tab, `[data-testid="session-list"]`, 15*time.Second))
	return tab
}

// remoteVideosDecoding counts the page's incoming video tracks that have decoded at least min
// frames since mark (a snapshot taken by markFrames, or none).
const remoteVideosDecoding = `(async (min) => {
  const pc = window.assistDebug && window.assistDebug.pc();
  if (!pc) return 0;
  const base = window.__framesMark || {};
  let n = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video' && (r.framesDecoded || 0) - (base[r.id] || 0) >= min) n++;
  });
  return n;
})`

// waitRemoteVideos waits until a page decodes video from n others.
func waitRemoteVideos(t *testing.T, tab context.Context, who string, n, minFrames int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := 0
	for {
		got, err := browsertest.Eval[int](tab, fmt.Sprintf("%s(%d)", remoteVideosDecoding, minFrames))
		if err == nil {
			last = got
			if got >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s decodes video from %d others, want %d (err %v)", who, last, n, err)
		}
		<-tick.C
	}
}

// tilesNamed waits until the page shows exactly the tiles with these captions.
func tilesNamed(t *testing.T, tab context.Context, who string, names ...string) {
	t.Helper()
	expr := fmt.Sprintf(`(() => {
	  const grid = document.getElementById('remote-videos');
	  const captions = [...grid.querySelectorAll('.tile .tile-caption')].map((c) => c.textContent).sort().join('|');
	  return grid.dataset.count === '%d' && captions === %q;
	})()`, len(names), strings.Join(sortedCopy(names), "|"))
	if err := browsertest.WaitFor(tab, expr, 20*time.Second); err != nil {
		got, _ := browsertest.Eval[string](tab, `[...document.querySelectorAll('#remote-videos .tile .tile-caption')].map((c) => c.textContent).join('|') + ' count=' + document.getElementById('remote-videos').dataset.count`)
		t.Fatalf("%s shows tiles %q, want %v: %v", who, got, names, err)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestBrowserExpertJoinsAndTheSessionIsHandedOver: a console, a customer and an invited expert
// in three tabs all see each other (two named tiles each); then the console hands the session
// over to a second console, and the customer's page keeps its peer connection throughout.
func TestBrowserExpertJoinsAndTheSessionIsHandedOver(t *testing.T) {
	ts := newTestServer(t)
	browser := browsertest.New(t)
	s := ts.createSession(t)
	ctx := context.Background()

	// The second specialist, who takes the session over.
	const secondPassword = "another long password"
	hash, _ := auth.HashPassword(secondPassword)
	second, err := ts.rooms.CreateSpecialist(ctx, ts.Bootstrap().OrganizationID, "ivan@example.com", "Ivan", hash, rooms.StaffSpecialist)
	must(t, "second specialist", err)
	first, err := ts.rooms.SpecialistByEmail(ctx, testEmail)
	must(t, "first specialist", err)

	console := consoleSignedIn(t, ts, browser, "console", testEmail, testPassword)
	must(t, "open the session", browsertest.Navigate(console, ts.URL+"/console/#session="+s.ID))
	must(t, "console in the session", browsertest.WaitState(console, "in-call", 15*time.Second))

	customer := browser.NewNamedTab(t, "customer")
	must(t, "open customer link", browsertest.Navigate(customer, s.CustomerURL))
	must(t, "customer name", browsertest.SetValue(customer, `[data-testid="name"]`, "Ann"))
	must(t, "customer joins", browsertest.Click(customer, `[data-testid="join"]`))
	must(t, "customer waits", browsertest.WaitState(customer, "waiting", 10*time.Second))
	must(t, "admit shown", browsertest.WaitVisible(console, `[data-testid="admit"]`, 15*time.Second))
	must(t, "admit", browsertest.Click(console, `[data-testid="admit"]`))
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))

	// The console makes an expert link; the expert opens it in a third tab.
	must(t, "expert name", browsertest.SetValue(console, `[data-testid="expert-name"]`, "Dr Ext"))
	must(t, "make the link", browsertest.Click(console, `[data-testid="expert-invite"]`))
	must(t, "link shown", browsertest.WaitFor(console, `document.querySelector('[data-testid="expert-link"]').value.includes('/e/')`, 10*time.Second))
	link, err := browsertest.Eval[string](console, `document.querySelector('[data-testid="expert-link"]').value`)
	must(t, "read the link", err)
	expert := browser.NewNamedTab(t, "expert")
	// Navigate by script: on a loaded machine the page's modules can take longer than
	// browsertest.Navigate waits for the load event; the page's state says when it is ready.
	_, err = browsertest.Eval[bool](expert, fmt.Sprintf(`(location.href = %q, true)`, link))
	must(t, "open the expert link", err)
	must(t, "expert page ready", browsertest.WaitState(expert, "idle", 90*time.Second))
	must(t, "expert joins", browsertest.Click(expert, `[data-testid="join"]`))
	must(t, "expert straight in the call", browsertest.WaitState(expert, "in-call", 15*time.Second))

	specialistName := first.Name
	for _, p := range []struct {
		who   string
		tab   context.Context
		tiles []string
	}{
		{"console", console, []string{"Ann", "Dr Ext"}},
		{"customer", customer, []string{specialistName, "Dr Ext"}},
		{"expert", expert, []string{specialistName, "Ann"}},
	} {
		waitRemoteVideos(t, p.tab, p.who, 2, 10, 45*time.Second)
		tilesNamed(t, p.tab, p.who, p.tiles...)
	}

	// The customer's peer connection, to check it is the same after the handover.
	_, err = browsertest.Eval[bool](customer, `(window.__pcBefore = window.assistDebug.pc(), true)`)
	must(t, "remember the customer's peer connection", err)

	// Hand over to the second console.
	colleague := consoleSignedIn(t, ts, browser, "colleague", "ivan@example.com", secondPassword)
	handover := fmt.Sprintf(`[data-specialist-id="%s"] [data-testid="colleague-handover"]`, second.ID)
	must(t, "the colleague is listed", browsertest.WaitVisible(console, handover, 40*time.Second))
	must(t, "hand over", browsertest.Click(console, handover))
	must(t, "the first console leaves", browsertest.WaitVisible(console, `[data-testid="session-list"]`, 15*time.Second))
	must(t, "the colleague is invited", browsertest.WaitVisible(colleague, `[data-testid="invitation-join"]`, 15*time.Second))
	must(t, "the colleague joins", browsertest.Click(colleague, `[data-testid="invitation-join"]`))
	must(t, "the colleague in the session", browsertest.WaitState(colleague, "in-call", 15*time.Second))

	_, err = browsertest.Eval[bool](customer, `(async () => {
	  const m = {};
	  (await window.assistDebug.pc().getStats()).forEach((r) => { if (r.type === 'inbound-rtp') m[r.id] = r.framesDecoded || 0; });
	  window.__framesMark = m;
	  return true;
	})()`)
	must(t, "mark the customer's frames", err)
	waitRemoteVideos(t, colleague, "colleague", 2, 10, 45*time.Second)
	tilesNamed(t, colleague, "colleague", "Ann", "Dr Ext")
	tilesNamed(t, customer, "customer", "Dr Ext", "Ivan")
	waitRemoteVideos(t, customer, "customer after the handover", 2, 10, 45*time.Second)
	same, err := browsertest.Eval[bool](customer, `window.assistDebug.pc() === window.__pcBefore && window.__pcBefore.connectionState === 'connected'`)
	must(t, "compare peer connections", err)
	if !same {
		t.Fatal("the customer's page changed or lost its peer connection during the handover")
	}
	if state, _ := browsertest.State(customer); state != "in-call" {
		t.Fatalf("customer state = %q", state)
	}
	must(t, "the handover is in the customer's messages", browsertest.WaitFor(customer,
		`[...document.querySelectorAll('#chat-list .chat-event-text')].some((e) => e.textContent.includes('handed the session over to Ivan'))`, 10*time.Second))

	sess, err := ts.rooms.Session(ctx, ts.Bootstrap().OrganizationID, s.ID)
	must(t, "read the session", err)
	if sess.HandedOverTo != second.ID {
		t.Fatalf("handed over to %q, want %s", sess.HandedOverTo, second.ID)
	}
	for _, tab := range []context.Context{console, customer, expert, colleague} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}
