package signaling

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/webclient/browsertest"
)

// TestBrowserVideoMessageAfterTheQueueTimeout: nobody admits the customer; after the (short)
// queue timeout they record a message with the fake camera, watch it back and send it; the
// console's inbox lists it and plays it.
func TestBrowserVideoMessageAfterTheQueueTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueTimeout = 2 * time.Second
	ts := startTestServer(t, cfg)
	browser := browsertest.New(t)
	s := ts.createSession(t)

	customer := browser.NewNamedTab(t, "customer")
	must(t, "open customer link", browsertest.Navigate(customer, s.CustomerURL))
	must(t, "type name", browsertest.SetValue(customer, `[data-testid="name"]`, "Ana"))
	must(t, "join", browsertest.Click(customer, `[data-testid="join"]`))
	must(t, "customer waits", browsertest.WaitState(customer, "waiting", 10*time.Second))
	must(t, "nobody could take the call", browsertest.WaitVisible(customer, `[data-testid="queue-timeout"]`, 15*time.Second))
	must(t, "leave a message", browsertest.Click(customer, `[data-testid="queue-timeout"] button:last-of-type`))
	must(t, "the message form", browsertest.WaitVisible(customer, `[data-testid="voicemail"]`, 5*time.Second))
	must(t, "phone", browsertest.SetValue(customer, `[data-testid="voicemail-phone"]`, "+34600111222"))

	record := func(what string) {
		must(t, what+": record", browsertest.Click(customer, `[data-testid="voicemail-record"]`))
		if err := browsertest.WaitFor(customer,
			`/Recording… [2-9] s/.test(document.querySelector('[data-testid="voicemail-status"]').textContent)`, 15*time.Second); err != nil {
			status, _ := browsertest.Text(customer, `[data-testid="voicemail-status"]`)
			notices, _ := browsertest.Text(customer, `#notices`)
			button, _ := browsertest.Text(customer, `[data-testid="voicemail-record"]`)
			t.Fatalf("%s: not recording for 2 s (status %q, record button %q, notices %q): %v; page errors %v",
				what, status, button, notices, err, browsertest.Errors(customer))
		}
		must(t, what+": stop", browsertest.Click(customer, `[data-testid="voicemail-record"]`))
		if err := browsertest.WaitFor(customer, `document.querySelector('[data-testid="voicemail"]').dataset.recorded === 'true' &&
		  !document.querySelector('[data-testid="voicemail-preview"]').hidden`, 10*time.Second); err != nil {
			status, _ := browsertest.Text(customer, `[data-testid="voicemail-status"]`)
			t.Fatalf("%s: no recording to watch back (status %q): %v; page errors %v", what, status, err, browsertest.Errors(customer))
		}
	}
	record("first take")
	record("second take") // "Record again" replaces the first take
	must(t, "send", browsertest.Click(customer, `[data-testid="voicemail-send"]`))
	must(t, "sent", browsertest.WaitVisible(customer, `[data-testid="voicemail-sent"]`, 20*time.Second))

	var list videoMessageList
	if resp := ts.do(t, "GET", "/v1/video-messages", ts.APIKey, nil, &list); resp.StatusCode != http.StatusOK || len(list.Data) != 1 {
		t.Fatalf("messages: %d %+v", resp.StatusCode, list.Data)
	}
	m := list.Data[0]
	if m.ContentType != "video/webm" || m.DurationMS < 2000 || m.Size < 1000 || m.Customer.Name != "Ana" ||
		m.Customer.Phone != "+34600111222" || m.Reason != "queue_timeout" || m.SessionID != s.ID {
		t.Fatalf("message %+v", m)
	}

	console := consoleSignedIn(t, ts, browser, "console", testEmail, testPassword)
	must(t, "the inbox lists it", browsertest.WaitVisible(console, `[data-testid="inbox-item"][data-message-id="`+m.ID+`"]`, 15*time.Second))
	must(t, "play", browsertest.Click(console, `[data-testid="inbox-play"]`))
	must(t, "it plays, with frames", browsertest.WaitFor(console, `(() => {
	  const v = document.querySelector('[data-testid="inbox-video"]');
	  return !!v && v.readyState >= 2 && v.duration > 0 && v.currentTime > 0.5 && !v.error &&
	    v.getVideoPlaybackQuality().totalVideoFrames > 0;
	})()`, 20*time.Second))
	must(t, "mark handled", browsertest.Click(console, `[data-testid="inbox-handled"]`))
	must(t, "it leaves the list of new ones", browsertest.WaitFor(console,
		`!document.querySelector('[data-testid="inbox-item"][data-message-id="`+m.ID+`"]')`, 10*time.Second))
	for _, tab := range []context.Context{customer, console} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}

// setPosition grants a tab location and fixes its position through the DevTools protocol.
func setPosition(t *testing.T, tab context.Context, origin string, lat, lon, acc float64) {
	t.Helper()
	c := chromedp.FromContext(tab)
	must(t, "grant geolocation", chromedp.Do(tab, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := cdp.Call(ctx, c.Browser, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: "geolocation"}, Setting: browser.PermissionSettingGranted,
			Origin: origin, BrowserContextID: c.BrowserContextID,
		})
		return err
	})))
	must(t, "fix the position", chromedp.Do(tab, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, emulation.SetGeolocationOverride,
			emulation.SetGeolocationOverrideParams{Latitude: &lat, Longitude: &lon, Accuracy: &acc})
		return err
	})))
}

// TestBrowserEmergencyLocation: the specialist flags the call as an emergency; the customer
// page shares its (DevTools-fixed) position and says so; the console shows it and so does the
// organisation's dispatch receiver, including when the customer moves.
func TestBrowserEmergencyLocation(t *testing.T) {
	ts := newTestServer(t)
	dispatch := startHookReceiver(t)
	endpoint := dispatch.register(t, ts, webhooks.TypeSessionEmergency)
	if resp := ts.do(t, "PATCH", "/v1/organization", ts.APIKey, map[string]any{"policy": map[string]any{"dispatch_webhook_id": endpoint}}, nil); resp.StatusCode != 200 {
		t.Fatalf("set dispatch: %d", resp.StatusCode)
	}
	browser := browsertest.New(t)
	s := ts.createSession(t)
	customer := customerWaits(t, browser, s.CustomerURL)
	specialist := specialistAdmits(t, browser, s.SpecialistURL)
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 20*time.Second))
	must(t, "specialist in call", browsertest.WaitState(specialist, "in-call", 20*time.Second))
	setPosition(t, customer, ts.URL, 48.8584, 2.2945, 15)

	must(t, "flag the emergency", browsertest.Click(specialist, `[data-testid="emergency"]`))
	must(t, "the console shows the banner", browsertest.WaitVisible(specialist, `[data-testid="emergency-banner"]`, 20*time.Second))
	must(t, "the customer is told their location is shared", browsertest.WaitVisible(customer, `[data-testid="emergency-share"]`, 20*time.Second))
	must(t, "the console shows the location", browsertest.WaitFor(specialist,
		`document.querySelector('[data-testid="emergency-location"]').dataset.latitude === '48.8584'`, 15*time.Second))

	dispatch.waitFor("the emergency", func(ev hookEvent) bool { return dispatchOf(t, ev).Kind == "flagged" })
	dispatch.waitFor("the location", func(ev hookEvent) bool {
		d := dispatchOf(t, ev)
		return d.Kind == "location" && d.Location != nil && d.Location.Latitude == 48.8584 && d.Location.Longitude == 2.2945
	})

	// The customer walks 200 m north.
	setPosition(t, customer, ts.URL, 48.8602, 2.2945, 10)
	must(t, "the console follows", browsertest.WaitFor(specialist,
		`document.querySelector('[data-testid="emergency-location"]').dataset.latitude === '48.8602'`, 20*time.Second))
	dispatch.waitFor("the new location", func(ev hookEvent) bool {
		d := dispatchOf(t, ev)
		return d.Kind == "location" && d.Location != nil && d.Location.Latitude == 48.8602
	})

	_, err := browsertest.Eval[bool](specialist, `(document.querySelector('[data-testid="emergency"]').click(), true)`)
	must(t, "end the emergency", err)
	must(t, "the customer stops sharing", browsertest.WaitFor(customer,
		`document.querySelector('[data-testid="emergency-share"]').hidden`, 10*time.Second))
	dispatch.waitFor("the clearing", func(ev hookEvent) bool { return dispatchOf(t, ev).Kind == "cleared" })
	for _, tab := range []context.Context{customer, specialist} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}
