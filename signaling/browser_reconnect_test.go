package signaling

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/assist-video/assist/webclient/browsertest"
)

// flakyLink is the customer's network between their browser and Assist: a TCP proxy on
// 127.0.0.1 that the test can cut (every connection through it is reset, new ones are refused)
// and restore. Only the page's HTTP and signaling go through it; media goes straight to the
// SFU, and the test takes it down with Chromium's network emulation.
type flakyLink struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu      sync.Mutex
	down    bool
	conns   map[net.Conn]struct{}
	refused []time.Time // when connections were refused while down
}

func newFlakyLink(t *testing.T, targetURL string) *flakyLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyLink{t: t, ln: ln, target: strings.TrimPrefix(targetURL, "http://"), conns: map[net.Conn]struct{}{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.serve(c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		l.cut(true)
	})
	return l
}

// URL is the link's address in place of the server's.
func (l *flakyLink) URL() string { return "http://" + l.ln.Addr().String() }

// via rewrites a server URL to go through the link.
func (l *flakyLink) via(serverURL, u string) string {
	return l.URL() + strings.TrimPrefix(u, serverURL)
}

func (l *flakyLink) serve(c net.Conn) {
	l.mu.Lock()
	if l.down {
		l.refused = append(l.refused, time.Now())
		l.mu.Unlock()
		_ = c.Close()
		return
	}
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	up, err := net.Dial("tcp", l.target)
	if err != nil {
		_ = c.Close()
		return
	}
	l.mu.Lock()
	l.conns[up] = struct{}{}
	l.mu.Unlock()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		_ = src.Close()
	}
	wg.Add(2)
	go pipe(up, c)
	go pipe(c, up)
	wg.Wait()
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, up)
	l.mu.Unlock()
}

// cut resets every connection through the link and, with down, refuses new ones until
// cut(false).
func (l *flakyLink) cut(down bool) {
	l.mu.Lock()
	l.down = down
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, as when the path dies, not a polite FIN
		}
		_ = c.Close()
	}
}

func (l *flakyLink) restore() {
	l.mu.Lock()
	l.down = false
	l.mu.Unlock()
}

func (l *flakyLink) refusals() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.refused...)
}

// setOffline takes the tab's network down or up: requests and WebRTC (Chromium's global
// emulation rule applies to peer-to-peer traffic too) and navigator.onLine, which fires the
// page's offline and online events.
func setOffline(ctx context.Context, offline bool) error {
	return chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tgt, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		rules := []*network.Conditions{{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}}
		if !offline {
			rules = []*network.Conditions{}
		}
		if _, err := cdp.Call(ctx, tgt, network.EmulateNetworkConditionsByRule,
			network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: rules}); err != nil {
			return fmt.Errorf("emulate conditions: %w", err)
		}
		_, err := cdp.Call(ctx, tgt, network.OverrideNetworkState,
			network.OverrideNetworkStateParams{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
}

// rosterStateJS is the console's roster state of the customer, empty when not listed.
const rosterStateJS = `(document.querySelector('#roster-list [data-role="customer"]') || {dataset: {}}).dataset.state || ''`

func waitRoster(t *testing.T, console context.Context, state string, timeout time.Duration) {
	t.Helper()
	if err := browsertest.WaitFor(console, rosterStateJS+` === '`+state+`'`, timeout); err != nil {
		got, _ := browsertest.Eval[string](console, rosterStateJS)
		t.Fatalf("the console's roster shows the customer %q, want %q: %v", got, state, err)
	}
}

// waitMoreFrames waits until the tab decodes at least n more video frames than it had.
func waitMoreFrames(t *testing.T, tab context.Context, what string, n int, timeout time.Duration) {
	t.Helper()
	before, err := browsertest.FramesDecoded(tab)
	must(t, what, err)
	must(t, what, browsertest.WaitFramesDecoded(tab, before+n, timeout))
}

func TestBrowserCustomerNetworkDropsAndComesBack(t *testing.T) {
	ts := newTestServer(t)
	browser := browsertest.New(t)
	s := ts.createSession(t)
	link := newFlakyLink(t, ts.URL)

	customer := customerWaits(t, browser, link.via(ts.URL, s.CustomerURL))
	specialist := specialistAdmits(t, browser, s.SpecialistURL)
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	must(t, "customer decodes", browsertest.WaitFramesDecoded(customer, 10, 30*time.Second))
	must(t, "specialist decodes", browsertest.WaitFramesDecoded(specialist, 10, 30*time.Second))
	waitRoster(t, specialist, "in_call", 10*time.Second)
	customerID := ts.getSession(t, s.ID).Participants[0].ID

	// The customer's connection dies: signaling is reset and refused for a while, then the
	// whole network (WebRTC included) is offline, ten seconds in all before it comes back.
	dropped := time.Now()
	link.cut(true)
	must(t, "the page says it is reconnecting", browsertest.WaitState(customer, "reconnecting", 5*time.Second))
	waitRoster(t, specialist, "reconnecting", 5*time.Second)
	must(t, "the specialist is still in the call", browsertest.WaitState(specialist, "in-call", time.Second))
	time.Sleep(4 * time.Second) // the outage itself: the page retries against a dead link meanwhile
	must(t, "offline", setOffline(customer, true))
	time.Sleep(10*time.Second - time.Since(dropped))
	if st, _ := browsertest.State(customer); st != "reconnecting" {
		t.Fatalf("after %v offline the page is %q, want still reconnecting", time.Since(dropped), st)
	}
	if got := ts.participantState(t, s.ID, customerID); got != "reconnecting" {
		t.Fatalf("after %v the server has the customer %q, want reconnecting", time.Since(dropped), got)
	}

	link.restore()
	must(t, "online", setOffline(customer, false))
	must(t, "the customer is back in the call", browsertest.WaitState(customer, "in-call", 20*time.Second))
	t.Logf("back %v after the drop", time.Since(dropped))
	waitRoster(t, specialist, "in_call", 10*time.Second)
	must(t, "the customer decodes video again", browsertest.WaitFramesDecoded(customer, 10, 30*time.Second))
	waitMoreFrames(t, specialist, "the specialist decodes the customer's video again", 20, 30*time.Second)

	got := ts.getSession(t, s.ID)
	if len(got.Participants) != 2 || got.Participants[0].ID != customerID || got.Participants[0].State != "in_call" {
		t.Fatalf("after the reconnect the participants are %+v, want the same customer in the call", got.Participants)
	}

	// While the link refused connections the page retried with growing pauses, not in a loop.
	tries := link.refusals()
	if len(tries) < 2 || len(tries) > 6 {
		t.Fatalf("%d attempts while the link was down (%v), want a few with backoff", len(tries), tries)
	}
	if first, second := tries[1].Sub(tries[0]), tries[len(tries)-1].Sub(tries[len(tries)-2]); len(tries) >= 3 && second < first {
		t.Fatalf("retry pauses shrank: %v then %v", first, second)
	}
	for _, tab := range []context.Context{customer, specialist} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}

func TestBrowserConsoleReloadRejoinsTheSession(t *testing.T) {
	ts := newTestServer(t)
	browser := browsertest.New(t)
	s := ts.createSession(t)

	customer := customerWaits(t, browser, s.CustomerURL)
	specialist := specialistAdmits(t, browser, s.SpecialistURL)
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	must(t, "specialist decodes", browsertest.WaitFramesDecoded(specialist, 10, 30*time.Second))
	must(t, "customer decodes", browsertest.WaitFramesDecoded(customer, 10, 30*time.Second))
	var specialistID string
	for _, p := range ts.getSession(t, s.ID).Participants {
		if p.Role == "specialist" {
			specialistID = p.ID
		}
	}

	must(t, "reload the console", chromedp.Do(specialist, chromedp.Reload()))
	must(t, "the console is back in the call", browsertest.WaitState(specialist, "in-call", 20*time.Second))
	must(t, "the console decodes the customer again", browsertest.WaitFramesDecoded(specialist, 10, 30*time.Second))
	waitMoreFrames(t, customer, "the customer decodes the specialist again", 20, 30*time.Second)
	waitRoster(t, specialist, "in_call", 10*time.Second)
	if st, _ := browsertest.State(customer); st != "in-call" {
		t.Fatalf("the customer's page is %q after the console reloaded, want in-call", st)
	}

	got := ts.getSession(t, s.ID)
	specialists := 0
	for _, p := range got.Participants {
		if p.Role == "specialist" {
			specialists++
			if p.ID != specialistID || p.State != "in_call" {
				t.Fatalf("after the reload the specialist is %s %s, want %s in_call", p.ID, p.State, specialistID)
			}
		}
	}
	if specialists != 1 || got.State != "active" {
		t.Fatalf("after the reload: %d specialists, session %s", specialists, got.State)
	}
}
