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

// The pages' own call quality (stats.js) and the console's Today panel, seats and analytics
// page (appointments.js, analytics.js), in real Chromium against a whole node.

func TestBrowserCallQualityStatsFromThePages(t *testing.T) {
	cfg := testConfig(t)
	cfg.QualityInterval = time.Second
	ts := startTestServer(t, cfg)
	browser := browsertest.New(t)
	s := ts.createSession(t)

	customer := customerWaits(t, browser, s.CustomerURL)
	specialist := specialistAdmits(t, browser, s.SpecialistURL)
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	must(t, "customer decodes video", browsertest.WaitFramesDecoded(customer, 1, 60*time.Second))
	must(t, "specialist decodes video", browsertest.WaitFramesDecoded(specialist, 1, 60*time.Second))

	// Both pages send a sample about every ten seconds once in the call.
	q := ts.waitQuality(t, s.ID, 45*time.Second, func(q sessionQuality) bool {
		roles := map[rooms.Role]bool{}
		for _, x := range q.Samples {
			if x.Source == rooms.QualityFromClient {
				roles[x.Role] = true
			}
		}
		return roles[rooms.RoleCustomer] && roles[rooms.RoleSpecialist]
	})
	// What a page can measure depends on what flowed in its interval (a shared test machine
	// under load decodes a few frames a second): every sample has figures of its own, and the
	// call as a whole gives a round trip and media received.
	rtt, received := false, false
	for _, x := range q.Samples {
		if x.Source != rooms.QualityFromClient {
			continue
		}
		t.Logf("%s page: rtt %s ms, jitter %s ms, loss %s%%, send %s kbps, receive %s kbps, %s fps over %d ms", x.Role,
			fmtPtr(x.RTTMs), fmtPtr(x.JitterMs), fmtPtr(x.LossPct), fmtPtr(x.SendKbps), fmtPtr(x.ReceiveKbps), fmtPtr(x.FrameRate), x.IntervalMs)
		if x.IntervalMs < 1000 || (x.RTTMs == nil && x.JitterMs == nil && x.SendKbps == nil && x.ReceiveKbps == nil) {
			t.Errorf("page sample without figures: %+v", x)
		}
		rtt = rtt || (x.RTTMs != nil && *x.RTTMs > 0)
		received = received || (x.ReceiveKbps != nil && *x.ReceiveKbps > 0) || (x.JitterMs != nil)
	}
	if !rtt || !received {
		t.Errorf("the pages measured no round trip (%v) or nothing received (%v)", rtt, received)
	}
	if q.BySource[rooms.QualityFromSFU].Samples == 0 {
		t.Error("no SFU samples of the browsers' call")
	}
	for _, tab := range []context.Context{customer, specialist} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}

// consoleSignIn opens the console in a new tab and signs in.
func consoleSignIn(t *testing.T, browser *browsertest.Browser, ts *testServer, name, email, password string) context.Context {
	t.Helper()
	tab := browser.NewNamedTab(t, name)
	must(t, name+": open console", browsertest.Navigate(tab, ts.URL+"/console/"))
	must(t, name+": email", browsertest.SetValue(tab, `[data-testid="login-email"]`, email))
	must(t, name+": password", browsertest.SetValue(tab, `[data-testid="login-password"]`, password))
	must(t, name+": sign in", browsertest.Click(tab, `[data-testid="login"]`))
	must(t, name+": sessions shown", browsertest.WaitVisible(tab, `[data-testid="session-list"]`, 10*time.Second))
	return tab
}

func TestBrowserConsoleTodaySeatsAndAnalytics(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	orgID := ts.Bootstrap().OrganizationID
	for _, role := range []rooms.StaffRole{rooms.StaffSupervisor, rooms.StaffSpecialist} {
		hash, _ := auth.HashPassword("a long password " + string(role))
		if _, err := ts.rooms.CreateSpecialist(ctx, orgID, "pat-"+string(role)+"@example.com", "Pat "+string(role), hash, role); err != nil {
			t.Fatal(err)
		}
	}
	// Three specialists on a licence of two: one seat over.
	if resp := ts.do(t, "PATCH", "/v1/orgs/"+orgID, ts.APIKey, map[string]any{"seats": 2}, nil); resp.StatusCode != 200 {
		t.Fatalf("set seats: %d", resp.StatusCode)
	}
	// Some history: a call that took place, one nobody answered.
	call := ts.startCall(t)
	ts.do(t, "POST", "/v1/sessions/"+call.session.ID+"/end", ts.APIKey, nil, nil)
	ts.createSession(t)
	// Today's appointment, unassigned (a few minutes ahead, so it is today unless the test
	// runs in the last minutes before midnight UTC).
	start := time.Now().Add(3 * time.Minute).Truncate(time.Minute)
	if start.UTC().Format(time.DateOnly) != time.Now().UTC().Format(time.DateOnly) {
		start = time.Now().Add(time.Minute)
	}
	apt := ts.book(t, start)

	browser := browsertest.New(t)
	supervisor := consoleSignIn(t, browser, ts, "supervisor", "pat-supervisor@example.com", "a long password supervisor")

	t.Run("today's appointments are listed with their notifications and a join", func(t *testing.T) {
		item := fmt.Sprintf(`[data-appointment-id=%q]`, apt.ID)
		must(t, "appointment listed", browsertest.WaitVisible(supervisor, item, 10*time.Second))
		text, err := browsertest.Text(supervisor, item)
		must(t, "read it", err)
		if !strings.Contains(text, "Ann") || !strings.Contains(text, "Unassigned") || !strings.Contains(text, "email") {
			t.Fatalf("appointment shows %q", text)
		}
		label, err := browsertest.Text(supervisor, item+` [data-testid="appointment-open"]`)
		must(t, "read the action", err)
		if label != "Join" {
			t.Errorf("action %q, want Join three minutes before the start", label)
		}
	})

	t.Run("seats used of licensed and the month's overage", func(t *testing.T) {
		must(t, "seats shown", browsertest.WaitFor(supervisor, `document.querySelector('[data-testid="seats"]')?.textContent.includes('3 used of 2 licensed')`, 10*time.Second))
		must(t, "overage shown", browsertest.WaitFor(supervisor, `document.querySelector('[data-testid="seat-report"]')?.textContent.includes('1 over')`, 10*time.Second))
	})

	t.Run("the analytics page draws a bar per day with sessions", func(t *testing.T) {
		must(t, "analytics link", browsertest.WaitVisible(supervisor, `[data-testid="open-analytics"]`, 10*time.Second))
		must(t, "open analytics", browsertest.Click(supervisor, `[data-testid="open-analytics"]`))
		must(t, "charts drawn", browsertest.WaitFor(supervisor, `document.querySelector('[data-testid="analytics-content"]')?.dataset.loaded === 'true'`, 15*time.Second))
		// The same range as the page's default: the last 30 days, today included.
		today := time.Now().UTC().Truncate(24 * time.Hour)
		var rep analyticsReport
		ts.do(t, "GET", "/v1/analytics?from="+today.AddDate(0, 0, -29).Format(time.RFC3339)+"&to="+today.AddDate(0, 0, 1).Format(time.RFC3339), ts.APIKey, nil, &rep)
		days := 0
		for _, d := range rep.SessionsPerDay {
			if d.Sessions > 0 {
				days++
			}
		}
		bars, err := browsertest.Eval[int](supervisor, `document.querySelectorAll('[data-testid="chart-sessions"] rect.chart-bar').length`)
		must(t, "count bars", err)
		if days == 0 || bars != days {
			t.Fatalf("%d bars, want %d (the days with sessions)", bars, days)
		}
		sessions, err := browsertest.Text(supervisor, `[data-testid="analytics-sessions"]`)
		must(t, "sessions figure", err)
		if sessions != fmt.Sprint(rep.Sessions) || rep.Sessions != 3 {
			t.Errorf("page says %s sessions, the API %d", sessions, rep.Sessions)
		}
		for _, chart := range []string{"chart-sessions", "chart-waiting", "chart-outcomes", "chart-duration", "chart-quality"} {
			ok, err := browsertest.Eval[bool](supervisor, fmt.Sprintf(`(() => {
				const svg = document.querySelector('[data-testid=%q]');
				return !!svg && svg.getAttribute('role') === 'img' && !!svg.querySelector('title')?.textContent &&
					!!svg.closest('figure')?.querySelector('details table');
			})()`, chart))
			must(t, chart, err)
			if !ok {
				t.Errorf("%s: missing, or without its title or table", chart)
			}
		}
		admitted, err := browsertest.Eval[string](supervisor, `[...document.querySelectorAll('[data-testid="table-outcomes"] tr')].find((r) => r.textContent.startsWith('Admitted'))?.textContent ?? ''`)
		must(t, "outcomes table", err)
		if admitted != "Admitted1" {
			t.Errorf("outcomes table row %q", admitted)
		}
		if errs := browsertest.Errors(supervisor); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	})

	t.Run("a plain specialist sees their day but no analytics", func(t *testing.T) {
		specialist := consoleSignIn(t, browser, ts, "specialist", "pat-specialist@example.com", "a long password specialist")
		must(t, "appointment listed", browsertest.WaitVisible(specialist, fmt.Sprintf(`[data-appointment-id=%q]`, apt.ID), 10*time.Second))
		must(t, "seats shown", browsertest.WaitFor(specialist, `document.querySelector('[data-testid="seats"]')?.textContent.includes('licensed')`, 10*time.Second))
		hidden, err := browsertest.Eval[bool](specialist, `document.querySelector('[data-testid="open-analytics"]').hidden && document.querySelector('[data-testid="seat-report"]').hidden`)
		must(t, "links", err)
		if !hidden {
			t.Error("a plain specialist is offered analytics or the seat report")
		}
		must(t, "go to analytics anyway", browsertest.Navigate(specialist, ts.URL+"/console/#analytics"))
		must(t, "refused", browsertest.WaitFor(specialist, `document.querySelector('[data-testid="analytics-error"]')?.dataset.status === '403'`, 10*time.Second))
		charts, err := browsertest.Eval[int](specialist, `document.querySelectorAll('#analytics-content svg').length`)
		must(t, "count charts", err)
		if charts != 0 {
			t.Errorf("%d charts shown to a plain specialist", charts)
		}
	})

	t.Run("Join opens the appointment's session in the console", func(t *testing.T) {
		loads, err := browsertest.Eval[string](supervisor, `document.querySelector('[data-testid="today-list"]').dataset.loads || '0'`)
		must(t, "today's list loads", err)
		must(t, "back", browsertest.Click(supervisor, `[data-testid="analytics-back"]`))
		// The sessions view lists today's appointments afresh: click the new list's button.
		must(t, "today listed again", browsertest.WaitFor(supervisor, fmt.Sprintf(`Number(document.querySelector('[data-testid="today-list"]').dataset.loads || 0) > %s`, loads), 10*time.Second))
		must(t, "join", browsertest.Click(supervisor, fmt.Sprintf(`[data-appointment-id=%q] [data-testid="appointment-open"]`, apt.ID)))
		must(t, "in the session", browsertest.WaitFor(supervisor, `document.body.dataset.state === 'in-call' || document.body.dataset.state === 'waiting'`, 15*time.Second))
		got := ts.getSession(t, apt.SessionID)
		if len(got.Participants) != 1 || got.Participants[0].Role != "specialist" {
			t.Fatalf("participants = %+v", got.Participants)
		}
	})
}
