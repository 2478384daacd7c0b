package signaling

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/assist-video/assist/webclient/browsertest"
)

// The in-session tools, end to end: a customer tab and a specialist tab in a call through a
// whole in-process node, driven through the pages' own controls. One server, one browser and
// one call serve all the subtests, in order.
func TestBrowserInSessionTools(t *testing.T) {
	ts := newTestServer(t)
	b := browsertest.New(t)
	s := ts.createSession(t)

	customer := b.NewNamedTab(t, "customer")
	must(t, "open customer link", browsertest.Navigate(customer, s.CustomerURL))
	must(t, "customer page idle", browsertest.WaitState(customer, "idle", 10*time.Second))
	must(t, "type name", browsertest.SetValue(customer, `[data-testid="name"]`, "Ann"))
	must(t, "join", browsertest.Click(customer, `[data-testid="join"]`))
	must(t, "customer waits", browsertest.WaitState(customer, "waiting", 10*time.Second))

	specialist := b.NewNamedTab(t, "specialist")
	must(t, "open specialist link", browsertest.Navigate(specialist, s.SpecialistURL))
	must(t, "specialist in the session", browsertest.WaitState(specialist, "in-call", 15*time.Second))

	t.Run("chat reaches the waiting room and comes back", func(t *testing.T) {
		sendChat(t, specialist, "Two minutes, please")
		must(t, "customer sees it", waitChat(customer, "Two minutes, please"))
		sendChat(t, customer, "<b>ok</b>")
		must(t, "specialist sees it verbatim", waitChat(specialist, "<b>ok</b>"))
		// Markup is shown as text, never parsed.
		n, err := browsertest.Eval[int](specialist, `document.querySelectorAll('#chat-list b').length`)
		must(t, "count elements", err)
		if n != 0 {
			t.Fatal("chat text was rendered as HTML")
		}
	})

	admit := `[data-testid="admit"]`
	must(t, "waiting customer appears in the console", browsertest.WaitVisible(specialist, admit, 15*time.Second))
	must(t, "admit", browsertest.Click(specialist, admit))
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	must(t, "specialist decodes the customer's video", browsertest.WaitFramesDecoded(specialist, 10, 30*time.Second))

	t.Run("chat in the call is ordered and de-duplicated", func(t *testing.T) {
		for _, text := range []string{"one", "two", "three"} {
			sendChat(t, customer, text)
		}
		must(t, "all arrive", waitChat(specialist, "three"))
		texts, err := browsertest.Eval[[]string](specialist, `[...document.querySelectorAll('#chat-list .chat-text')].map((e) => e.textContent)`)
		must(t, "read chat", err)
		want := []string{"Two minutes, please", "<b>ok</b>", "one", "two", "three"}
		if strings.Join(texts, "|") != strings.Join(want, "|") {
			t.Fatalf("specialist's chat = %q, want %q", texts, want)
		}
	})

	t.Run("the console hides camera controls the camera lacks", func(t *testing.T) {
		must(t, "capabilities arrive", browsertest.WaitFor(specialist,
			`document.getElementById('camera-controls').dataset.received === 'true'`, 15*time.Second))
		hidden, err := browsertest.Eval[bool](specialist, `document.getElementById('torch-button').hidden`)
		must(t, "read torch", err)
		if !hidden {
			t.Fatal("the torch control is shown for a fake camera without a torch")
		}
	})

	t.Run("a file sent from the customer page downloads intact on the console", func(t *testing.T) {
		content := fmt.Sprintf("Serial number: AB-1234\nfirmware 2.7.1\nnoted at %s\n", time.Now().Format(time.RFC3339Nano))
		sum := sha256.Sum256([]byte(content))
		js, _ := json.Marshal(content)
		_, err := browsertest.Eval[bool](customer, fmt.Sprintf(`(() => {
			const input = document.getElementById('file-input');
			const dt = new DataTransfer();
			dt.items.add(new File([%s], 'notes.txt', { type: 'text/plain' }));
			input.files = dt.files;
			input.dispatchEvent(new Event('change', { bubbles: true }));
			return true;
		})()`, js))
		must(t, "pick the file", err)
		link := `#chat-list [data-testid="file-link"]`
		must(t, "console shows the file", browsertest.WaitFor(specialist, `document.querySelector('`+link+`')`, 15*time.Second))
		name, err := browsertest.Text(specialist, link)
		must(t, "read the name", err)
		if name != "notes.txt" {
			t.Errorf("file shown as %q", name)
		}
		got, err := browsertest.Eval[string](specialist, `(async () => {
			const res = await fetch(document.querySelector('`+link+`').href);
			if (!res.ok) return 'status ' + res.status;
			const digest = await crypto.subtle.digest('SHA-256', await res.arrayBuffer());
			return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
		})()`)
		must(t, "download", err)
		if got != hex.EncodeToString(sum[:]) {
			t.Fatalf("downloaded sha256 %s, uploaded %x", got, sum)
		}
	})

	t.Run("a photo taken from the console reaches the gallery and the timeline", func(t *testing.T) {
		must(t, "take photo", browsertest.Click(specialist, `[data-testid="take-photo"]`))
		must(t, "photo in the gallery", browsertest.WaitFor(specialist,
			`(() => { const img = document.querySelector('#gallery img[data-testid="snapshot"]'); return img && img.complete && img.naturalWidth > 0; })()`,
			20*time.Second))
		got := ts.getSession(t, s.ID)
		found := false
		for _, e := range got.Timeline {
			if e.Type == "snapshot_taken" {
				found = true
			}
		}
		if !found {
			t.Fatalf("no snapshot_taken in the session's timeline (%d entries)", len(got.Timeline))
		}
	})

	t.Run("an annotation drawn on the console shows on the customer page at the same place", func(t *testing.T) {
		must(t, "canvas over the customer's video", browsertest.WaitFor(specialist,
			`(() => { const c = document.querySelector('#remote-videos canvas.annotation-layer'); const v = c && c.parentElement.querySelector('video'); return v && v.videoWidth > 0 && c.clientWidth > 0; })()`,
			15*time.Second))
		// Drag the pen from (0.25, 0.25) to (0.75, 0.5) of the video frame, with pointer events
		// at the client positions that the letterboxed frame puts there.
		_, err := browsertest.Eval[bool](specialist, `(async () => {
			const c = document.querySelector('#remote-videos canvas.annotation-layer');
			const v = c.parentElement.querySelector('video');
			const box = c.getBoundingClientRect();
			const s = Math.min(box.width / v.videoWidth, box.height / v.videoHeight);
			const fw = v.videoWidth * s, fh = v.videoHeight * s;
			const ox = box.left + (box.width - fw) / 2, oy = box.top + (box.height - fh) / 2;
			const at = (x, y) => ({ clientX: ox + x * fw, clientY: oy + y * fh });
			const fire = (type, x, y) => c.dispatchEvent(new PointerEvent(type, {
				bubbles: true, cancelable: true, pointerId: 7, pointerType: 'mouse', button: 0, buttons: type === 'pointerup' ? 0 : 1, ...at(x, y),
			}));
			fire('pointerdown', 0.25, 0.25);
			for (let i = 1; i <= 10; i++) {
				fire('pointermove', 0.25 + 0.05 * i, 0.25 + 0.025 * i);
				await new Promise((r) => setTimeout(r, 10));
			}
			fire('pointerup', 0.75, 0.5);
			return true;
		})()`)
		must(t, "draw", err)
		must(t, "the customer page shows the stroke", browsertest.WaitFor(customer,
			`window.assistDebug.annotations().length === 1`, 10*time.Second))
		must(t, "the console has it confirmed", browsertest.WaitFor(specialist,
			`window.assistDebug.annotations().length === 1`, 10*time.Second))
		type stroke struct {
			ID     string       `json:"id"`
			Tool   string       `json:"tool"`
			Points [][2]float64 `json:"points"`
		}
		console, err := browsertest.Eval[[]stroke](specialist, `window.assistDebug.annotations()`)
		must(t, "console strokes", err)
		shown, err := browsertest.Eval[[]stroke](customer, `window.assistDebug.annotations()`)
		must(t, "customer strokes", err)
		c, p := console[0], shown[0]
		if c.ID != p.ID || c.Tool != "freehand" || len(c.Points) != len(p.Points) || len(c.Points) < 2 {
			t.Fatalf("console stroke %+v, customer stroke %+v", c, p)
		}
		for i := range c.Points {
			if c.Points[i] != p.Points[i] {
				t.Fatalf("point %d: console %v, customer %v", i, c.Points[i], p.Points[i])
			}
		}
		first, last := c.Points[0], c.Points[len(c.Points)-1]
		if math.Abs(first[0]-0.25) > 0.01 || math.Abs(first[1]-0.25) > 0.01 || math.Abs(last[0]-0.75) > 0.01 || math.Abs(last[1]-0.5) > 0.01 {
			t.Fatalf("the stroke runs %v → %v, want about (0.25, 0.25) → (0.75, 0.5) of the frame", first, last)
		}

		must(t, "undo", browsertest.Click(specialist, `[data-testid="annotation-undo"]`))
		must(t, "the customer page drops it", browsertest.WaitFor(customer,
			`window.assistDebug.annotations().length === 0`, 10*time.Second))
	})

	t.Run("the customer's location reaches the console", func(t *testing.T) {
		c := chromedp.FromContext(customer)
		must(t, "grant geolocation", chromedp.Do(customer, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := cdp.Call(ctx, c.Browser, browser.SetPermission, browser.SetPermissionParams{
				Permission: &browser.PermissionDescriptor{Name: "geolocation"}, Setting: browser.PermissionSettingGranted,
				Origin: ts.URL, BrowserContextID: c.BrowserContextID,
			})
			return err
		})))
		lat, lon, acc := 48.8584, 2.2945, 25.0
		must(t, "fix the position", chromedp.Do(customer, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, emulation.SetGeolocationOverride,
				emulation.SetGeolocationOverrideParams{Latitude: &lat, Longitude: &lon, Accuracy: &acc})
			return err
		})))
		must(t, "ask", browsertest.Click(specialist, `[data-testid="request-location"]`))
		must(t, "map link", browsertest.WaitFor(specialist, `document.querySelector('[data-testid="location-map"]')`, 15*time.Second))
		href, err := browsertest.Eval[string](specialist, `document.querySelector('[data-testid="location-map"]').href`)
		must(t, "read link", err)
		if !strings.HasPrefix(href, "https://www.openstreetmap.org/?mlat=48.858400&mlon=2.294500") {
			t.Fatalf("map link %q", href)
		}
	})

	t.Run("camera control shows the customer a notice with a working Refuse", func(t *testing.T) {
		// The fake camera cannot flip, so the console hides the control; its handler still runs
		// when clicked from script, and the customer page must answer either way.
		before, err := browsertest.FramesDecoded(specialist)
		must(t, "frames", err)
		_, err = browsertest.Eval[bool](specialist, `(document.getElementById('flip-button').click(), true)`)
		must(t, "flip", err)
		must(t, "the customer sees the notice", browsertest.WaitVisible(customer, `[data-testid="camera-notice"]`, 10*time.Second))
		must(t, "the console gets the result", browsertest.WaitFor(specialist,
			`/^flip: (done|not done)/.test(document.getElementById('camera-status').textContent)`, 15*time.Second))
		must(t, "refuse", browsertest.Click(customer, `[data-testid="camera-refuse"]`))
		must(t, "the console hears the refusal", browsertest.WaitFor(specialist,
			`document.getElementById('camera-status').textContent.includes('refused')`, 10*time.Second))
		must(t, "the customer's video still arrives", browsertest.WaitFramesDecoded(specialist, before+30, 20*time.Second))
	})

	t.Run("a screen shared from the console is announced and stopping it in the browser ends it", func(t *testing.T) {
		senders := `window.assistDebug.pc().getSenders().filter((s) => s.track && s.track.kind === 'video').length`
		must(t, "share", browsertest.Click(specialist, `[data-testid="share-screen"]`))
		must(t, "a second video track is sent", browsertest.WaitFor(specialist, senders+` === 2`, 10*time.Second))
		must(t, "the customer is told", browsertest.WaitFor(customer,
			`[...document.querySelectorAll('#chat-list .chat-event-text')].some((e) => e.textContent === 'Started sharing their screen.')`, 10*time.Second))
		must(t, "the customer sees the screen in its own tile", browsertest.WaitFor(customer,
			`document.querySelectorAll('#remote-videos .tile').length === 2`, 15*time.Second))
		// The browser's own "Stop sharing" ends the track.
		_, err := browsertest.Eval[bool](specialist, `(() => {
			const s = window.assistDebug.pc().getSenders().find((x) => x.track && x.track.kind === 'video' && x.track !== window.assistDebug.localStream().getVideoTracks()[0]);
			s.track.dispatchEvent(new Event('ended'));
			return true;
		})()`)
		must(t, "end the track", err)
		must(t, "the screen track is removed", browsertest.WaitFor(specialist, senders+` === 1`, 10*time.Second))
		must(t, "the customer is told it stopped", browsertest.WaitFor(customer,
			`[...document.querySelectorAll('#chat-list .chat-event-text')].some((e) => e.textContent === 'Stopped sharing their screen.')`, 10*time.Second))
		must(t, "the screen's tile goes away", browsertest.WaitFor(customer,
			`document.querySelectorAll('#remote-videos .tile').length === 1`, 15*time.Second))
		must(t, "the call still runs", browsertest.WaitFramesDecoded(customer, 10, 10*time.Second))
	})

	t.Run("a specialist who joins later sees the history", func(t *testing.T) {
		late := b.NewNamedTab(t, "late specialist")
		must(t, "open specialist link", browsertest.Navigate(late, s.SpecialistURL))
		must(t, "chat from before", waitChat(late, "three"))
		must(t, "the shared file", browsertest.WaitFor(late, `document.querySelector('#chat-list [data-testid="file-link"]')`, 10*time.Second))
		must(t, "the photo", browsertest.WaitFor(late, `document.querySelector('#gallery img[data-testid="snapshot"]')`, 10*time.Second))
		must(t, "the location", browsertest.WaitFor(late, `document.querySelector('[data-testid="location-map"]')`, 10*time.Second))
		n, err := browsertest.Eval[int](late, `document.querySelectorAll('#chat-list .chat-message').length`)
		must(t, "count", err)
		if n != 5 {
			t.Errorf("%d chat messages after the replay, want 5", n)
		}
	})

	for _, tab := range []context.Context{customer, specialist} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}

func sendChat(t *testing.T, tab context.Context, text string) {
	t.Helper()
	must(t, "type "+text, browsertest.SetValue(tab, `[data-testid="chat-input"]`, text))
	must(t, "send "+text, browsertest.Click(tab, `[data-testid="chat-send"]`))
	// The form clears once the message is on its way.
	must(t, "sent "+text, browsertest.WaitFor(tab, `document.querySelector('[data-testid="chat-input"]').value === ''`, 5*time.Second))
}

func waitChat(tab context.Context, text string) error {
	js, _ := json.Marshal(text)
	return browsertest.WaitFor(tab, fmt.Sprintf(
		`[...document.querySelectorAll('#chat-list .chat-text')].some((e) => e.textContent === %s)`, js), 10*time.Second)
}
