package signaling

import (
	"context"
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

	"github.com/assist-video/assist/signaling/wire"
	"github.com/assist-video/assist/webclient/browsertest"
)

// Annotation, pointer, snapshot mark-up and a declined location request, end to end: the
// console in a 1280×800 landscape window, the customer on a phone-sized portrait page at twice
// the pixel density (the self-view there is cropped to fill and mirrored, the console's tile is
// letterboxed). What the customer page holds and what it paints are read back and compared
// with the place of the frame the specialist drew on. One call serves the subtests, in order.
func TestBrowserMarksOnVideoAndSnapshots(t *testing.T) {
	ts := newTestServer(t)
	b := browsertest.New(t)
	s := ts.createSession(t)

	customer := b.NewNamedTab(t, "customer")
	must(t, "phone-sized customer page", chromedp.Do(customer, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, emulation.SetDeviceMetricsOverride,
			emulation.SetDeviceMetricsOverrideParams{Width: 412, Height: 860, DeviceScaleFactor: 2, Mobile: true})
		return err
	})))
	must(t, "open customer link", browsertest.Navigate(customer, s.CustomerURL))
	must(t, "type name", browsertest.SetValue(customer, `[data-testid="name"]`, "Ann"))
	must(t, "join", browsertest.Click(customer, `[data-testid="join"]`))
	must(t, "customer waits", browsertest.WaitState(customer, "waiting", 10*time.Second))
	specialist := specialistAdmits(t, b, s.SpecialistURL)
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	// Marks need the frame's size only: the first decoded frame of the customer's video.
	must(t, "canvas over the customer's video", browsertest.WaitFor(specialist,
		`(() => { const c = document.querySelector('#remote-videos canvas.annotation-layer'); const v = c && c.parentElement.querySelector('video'); return v && v.videoWidth > 0 && c.clientWidth > 0; })()`,
		30*time.Second))
	must(t, "the customer's self-view plays", browsertest.WaitFor(customer,
		`(() => { const v = document.getElementById('self-view'); return v.videoWidth > 0 && v.clientWidth > 0; })()`, 10*time.Second))
	portrait, err := browsertest.Eval[bool](customer, `matchMedia('(orientation: portrait)').matches && devicePixelRatio === 2`)
	must(t, "customer viewport", err)
	if !portrait {
		t.Fatal("the customer page is not a portrait page at twice the pixel density")
	}

	const (
		videoCanvas = `#remote-videos canvas.annotation-layer`
		selfCanvas  = `#self-annotations`
		selfVideo   = `#self-view`
		red         = "#ff3d00" // the console's default colour
	)
	// draw drags a mark on the console and waits until the customer's pointer, shown in the
	// same colour while the mouse moves, has gone: the probes then see the mark alone.
	draw := func(t *testing.T, canvas, pointer string, pts [][2]float64) {
		t.Helper()
		must(t, "draw", drag(specialist, canvas, pts, false))
		must(t, "the pointer goes", browsertest.WaitFor(customer, pointer+` === null`, 5*time.Second))
	}
	const videoPointer = `window.assistDebug.pointer()`

	// The marks stay inside the middle of the frame, which the customer's portrait self-view
	// (a 4:3 camera cropped to 3:4) still shows.
	t.Run("arrow, circle and text land on the same place of the frame on the customer's phone", func(t *testing.T) {
		cases := []struct {
			tool   string
			text   string
			points [][2]float64
			// probes: where the customer's canvas must be painted in the mark's colour, and
			// where it must stay clear, in frame coordinates; box is the CSS pixel area
			// around the probe to search (text grows right and down from its anchor).
			on, clear [][2]float64
			box       [4]float64
		}{
			{tool: "arrow", points: [][2]float64{{0.35, 0.3}, {0.65, 0.7}},
				on: [][2]float64{{0.5, 0.5}, {0.65, 0.7}}, clear: [][2]float64{{0.65, 0.3}, {0.35, 0.7}}, box: [4]float64{-3, -3, 3, 3}},
			{tool: "circle", points: [][2]float64{{0.35, 0.25}, {0.65, 0.55}},
				on: [][2]float64{{0.5, 0.25}, {0.5, 0.55}, {0.35, 0.4}, {0.65, 0.4}}, clear: [][2]float64{{0.5, 0.4}}, box: [4]float64{-3, -3, 3, 3}},
			{tool: "text", text: "Unscrew here", points: [][2]float64{{0.4, 0.45}},
				on: [][2]float64{{0.4, 0.45}}, clear: [][2]float64{{0.4, 0.2}}, box: [4]float64{0, 0, 40, 14}},
		}
		for _, c := range cases {
			selectTool(t, specialist, c.tool)
			if c.text != "" {
				must(t, "type the text", browsertest.SetValue(specialist, `[data-testid="annotation-text"]`, c.text))
			}
			draw(t, videoCanvas, videoPointer, c.points)
			got := waitStrokes(t, customer, `window.assistDebug.annotations()`, 1)
			sent := waitStrokes(t, specialist, `window.assistDebug.annotations()`, 1)
			st := got[0]
			if st.ID != sent[0].ID || st.Tool != c.tool || st.Color != red || st.Text != c.text || !samePoints(st.Points, sent[0].Points) {
				t.Fatalf("%s: the customer holds %+v, the console %+v", c.tool, st, sent[0])
			}
			if !near(st.Points, c.points, 0.01) {
				t.Fatalf("%s: points %v, drawn at %v of the frame", c.tool, st.Points, c.points)
			}
			for _, p := range c.on {
				must(t, fmt.Sprintf("%s painted at %v", c.tool, p), waitPainted(customer, selfCanvas, selfVideo, p, c.box, red, true))
			}
			for _, p := range c.clear {
				if err := waitPainted(customer, selfCanvas, selfVideo, p, [4]float64{-2, -2, 2, 2}, "", false); err != nil {
					t.Errorf("%s: the customer's canvas is painted where the mark is not: %v", c.tool, err)
				}
			}
			must(t, "clear", browsertest.Click(specialist, `[data-testid="annotation-clear"]`))
			waitStrokes(t, customer, `window.assistDebug.annotations()`, 0)
		}
	})

	t.Run("a colour picked on the console is the colour on the customer's page", func(t *testing.T) {
		const green = "#00c853"
		selectTool(t, specialist, "freehand")
		must(t, "pick green", browsertest.SetValue(specialist, `[data-testid="annotation-color"]`, green))
		draw(t, videoCanvas, videoPointer, [][2]float64{{0.4, 0.3}, {0.5, 0.35}, {0.6, 0.4}})
		got := waitStrokes(t, customer, `window.assistDebug.annotations()`, 1)
		if got[0].Color != green {
			t.Fatalf("the customer's stroke is %s, want %s", got[0].Color, green)
		}
		must(t, "painted green", waitPainted(customer, selfCanvas, selfVideo, [2]float64{0.5, 0.35}, [4]float64{-3, -3, 3, 3}, green, true))
		must(t, "back to red", browsertest.SetValue(specialist, `[data-testid="annotation-color"]`, red))
		must(t, "clear", browsertest.Click(specialist, `[data-testid="annotation-clear"]`))
		waitStrokes(t, customer, `window.assistDebug.annotations()`, 0)
	})

	t.Run("undo takes back the last mark and clear the rest on the customer's page", func(t *testing.T) {
		selectTool(t, specialist, "arrow")
		draw(t, videoCanvas, videoPointer, [][2]float64{{0.35, 0.2}, {0.65, 0.2}})
		first := waitStrokes(t, customer, `window.assistDebug.annotations()`, 1)
		draw(t, videoCanvas, videoPointer, [][2]float64{{0.35, 0.8}, {0.65, 0.8}})
		waitStrokes(t, customer, `window.assistDebug.annotations()`, 2)
		must(t, "second painted", waitPainted(customer, selfCanvas, selfVideo, [2]float64{0.5, 0.8}, [4]float64{-3, -3, 3, 3}, red, true))

		must(t, "undo", browsertest.Click(specialist, `[data-testid="annotation-undo"]`))
		left := waitStrokes(t, customer, `window.assistDebug.annotations()`, 1)
		if left[0].ID != first[0].ID {
			t.Fatalf("undo left %s, want the first mark %s", left[0].ID, first[0].ID)
		}
		must(t, "the second arrow is wiped", waitPainted(customer, selfCanvas, selfVideo, [2]float64{0.5, 0.8}, [4]float64{-3, -3, 3, 3}, "", false))
		must(t, "the first arrow stays", waitPainted(customer, selfCanvas, selfVideo, [2]float64{0.5, 0.2}, [4]float64{-3, -3, 3, 3}, red, true))

		must(t, "clear", browsertest.Click(specialist, `[data-testid="annotation-clear"]`))
		waitStrokes(t, customer, `window.assistDebug.annotations()`, 0)
		must(t, "the canvas is blank", browsertest.WaitFor(customer, blankCanvasJS(selfCanvas), 5*time.Second))
	})

	t.Run("the pointer moves on the customer's page and goes away", func(t *testing.T) {
		must(t, "hover", drag(specialist, videoCanvas, [][2]float64{{0.3, 0.3}, {0.45, 0.6}}, true))
		must(t, "the customer sees the pointer where it stopped", browsertest.WaitFor(customer,
			`(() => { const p = window.assistDebug.pointer(); return p && Math.abs(p.x - 0.45) < 0.01 && Math.abs(p.y - 0.6) < 0.01; })()`, 5*time.Second))
		must(t, "painted there", waitPainted(customer, selfCanvas, selfVideo, [2]float64{0.45, 0.6}, [4]float64{-3, -3, 3, 3}, "#ff3d00", true))
		_, err := browsertest.Eval[bool](specialist, `document.querySelector('`+videoCanvas+`').dispatchEvent(new PointerEvent('pointerleave', { pointerId: 7, pointerType: 'mouse' }))`)
		must(t, "leave", err)
		must(t, "the pointer goes", browsertest.WaitFor(customer, `window.assistDebug.pointer() === null`, 5*time.Second))
	})

	var snapID string
	t.Run("marks on a snapshot show on the customer's page over the same photo", func(t *testing.T) {
		must(t, "take photo", browsertest.Click(specialist, `[data-testid="take-photo"]`))
		open := `[data-testid="open-snapshot"]`
		must(t, "photo in the gallery", browsertest.WaitFor(specialist,
			`(() => { const img = document.querySelector('`+open+` img'); return img && img.complete && img.naturalWidth > 0; })()`, 20*time.Second))
		id, err := browsertest.Eval[string](specialist, `document.querySelector('`+open+`').dataset.snapshotId`)
		must(t, "snapshot id", err)
		snapID = id
		must(t, "open it", browsertest.Click(specialist, open))
		must(t, "the photo is open for marking", browsertest.WaitFor(specialist,
			`(() => { const img = document.getElementById('snapshot-image'); return window.assistDebug.shownSnapshot() === '`+id+`' && img.complete && img.naturalWidth > 0 && document.getElementById('snapshot-annotations').clientWidth > 0; })()`, 10*time.Second))
		if title, _ := browsertest.Text(specialist, `[data-testid="annotation-title"]`); title != "Draw on the photo" {
			t.Errorf("the tools say %q while a photo is open", title)
		}
		href, err := browsertest.Eval[string](specialist, `(async () => {
			const res = await fetch(document.getElementById('snapshot-download').href);
			return res.ok ? res.headers.get('content-type') : 'status ' + res.status;
		})()`)
		must(t, "download", err)
		if !strings.HasPrefix(href, "image/") {
			t.Errorf("the Download link gives %q", href)
		}

		selectTool(t, specialist, "circle")
		pts := [][2]float64{{0.2, 0.3}, {0.6, 0.8}}
		draw(t, `#snapshot-annotations`, fmt.Sprintf(`window.assistDebug.snapshotPointer(%q)`, id), pts)
		strokes := fmt.Sprintf(`window.assistDebug.snapshotAnnotations(%q)`, id)
		sent := waitStrokes(t, specialist, strokes, 1)
		must(t, "the customer is shown the photo", browsertest.WaitFor(customer,
			`(() => { const img = document.getElementById('snapshot-image'); return window.assistDebug.shownSnapshot() === '`+id+`' && img.complete && img.naturalWidth > 0 && !document.getElementById('snapshot-viewer').hidden; })()`, 10*time.Second))
		got := waitStrokes(t, customer, strokes, 1)
		if got[0].ID != sent[0].ID || got[0].Tool != "circle" || !samePoints(got[0].Points, sent[0].Points) || !near(got[0].Points, pts, 0.01) {
			t.Fatalf("the customer holds %+v on the photo, the console %+v", got[0], sent[0])
		}
		if n, _ := browsertest.Eval[int](customer, `window.assistDebug.annotations().length`); n != 0 {
			t.Fatalf("the photo's mark also landed on the live video (%d marks)", n)
		}
		for _, p := range [][2]float64{{0.4, 0.3}, {0.2, 0.55}, {0.6, 0.55}, {0.4, 0.8}} {
			must(t, fmt.Sprintf("painted on the photo at %v", p),
				waitPainted(customer, `#snapshot-annotations`, `#snapshot-image`, p, [4]float64{-3, -3, 3, 3}, red, true))
		}
		if err := waitPainted(customer, `#snapshot-annotations`, `#snapshot-image`, [2]float64{0.4, 0.55}, [4]float64{-3, -3, 3, 3}, "", false); err != nil {
			t.Errorf("the middle of the circle is painted: %v", err)
		}

		must(t, "point on the photo", drag(specialist, `#snapshot-annotations`, [][2]float64{{0.7, 0.2}, {0.75, 0.25}}, true))
		must(t, "the customer sees the pointer on the photo", browsertest.WaitFor(customer, fmt.Sprintf(
			`(() => { const p = window.assistDebug.snapshotPointer(%q); return p && Math.abs(p.x - 0.75) < 0.01 && Math.abs(p.y - 0.25) < 0.01; })()`, id), 5*time.Second))
	})

	t.Run("after a reload both pages redraw the snapshot's marks from the history", func(t *testing.T) {
		if snapID == "" {
			t.Fatal("no snapshot to redraw: the snapshot step failed")
		}
		strokes := fmt.Sprintf(`window.assistDebug.snapshotAnnotations(%q)`, snapID)
		must(t, "reload the console", chromedp.Do(specialist, chromedp.Reload()))
		must(t, "console back in", browsertest.WaitState(specialist, "in-call", 15*time.Second))
		waitStrokes(t, specialist, strokes, 1)
		must(t, "the gallery marks the photo", browsertest.WaitFor(specialist,
			fmt.Sprintf(`document.querySelector('.gallery-item.marked[data-snapshot-id=%q]')`, snapID), 10*time.Second))

		must(t, "reload the customer", chromedp.Do(customer, chromedp.Reload()))
		must(t, "customer page idle", browsertest.WaitState(customer, "idle", 10*time.Second))
		must(t, "join again", browsertest.Click(customer, `[data-testid="join"]`))
		must(t, "customer back", browsertest.WaitFor(customer, `['waiting', 'in-call'].includes(document.body.dataset.state)`, 15*time.Second))
		if st, _ := browsertest.State(customer); st == "waiting" {
			must(t, "readmit", browsertest.WaitVisible(specialist, `[data-testid="admit"]`, 15*time.Second))
			must(t, "admit", browsertest.Click(specialist, `[data-testid="admit"]`))
			must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
		}
		got := waitStrokes(t, customer, strokes, 1)
		if got[0].Tool != "circle" {
			t.Fatalf("replayed %+v", got[0])
		}
		must(t, "the photo is shown again with its mark", browsertest.WaitFor(customer,
			`(() => { const img = document.getElementById('snapshot-image'); return window.assistDebug.shownSnapshot() === '`+snapID+`' && img.complete && img.naturalWidth > 0; })()`, 10*time.Second))
		must(t, "painted", waitPainted(customer, `#snapshot-annotations`, `#snapshot-image`, [2]float64{0.4, 0.3}, [4]float64{-3, -3, 3, 3}, red, true))
	})

	t.Run("a location request the customer declines shows as declined on the console", func(t *testing.T) {
		c := chromedp.FromContext(customer)
		must(t, "deny geolocation", chromedp.Do(customer, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := cdp.Call(ctx, c.Browser, browser.SetPermission, browser.SetPermissionParams{
				Permission: &browser.PermissionDescriptor{Name: "geolocation"}, Setting: browser.PermissionSettingDenied,
				Origin: ts.URL, BrowserContextID: c.BrowserContextID,
			})
			return err
		})))
		must(t, "ask", browsertest.Click(specialist, `[data-testid="request-location"]`))
		must(t, "the console hears it was declined", browsertest.WaitFor(specialist,
			`document.querySelector('[data-testid="location-result"]').dataset.declined === 'true'`, 15*time.Second))
		text, err := browsertest.Text(specialist, `[data-testid="location-result"]`)
		must(t, "read", err)
		if !strings.Contains(text, "declined") || !strings.Contains(text, "did not allow") {
			t.Errorf("the console says %q", text)
		}
		if n, _ := browsertest.Eval[int](specialist, `document.querySelectorAll('[data-testid="location-map"]').length`); n != 0 {
			t.Error("a map link is shown for a declined request")
		}
		must(t, "the customer's timeline says so", browsertest.WaitFor(customer,
			`[...document.querySelectorAll('#chat-list .chat-event-text')].some((e) => e.textContent === 'You did not share your location.')`, 5*time.Second))
	})

	for _, tab := range []context.Context{customer, specialist} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}

// TestBrowserRecordingNoticesAndStorageBadge: the customer is told before a recording starts,
// in a notice that stays up long enough to read and in the timeline; the console shows that the
// recording is starting, and how many segments wait for object storage.
func TestBrowserRecordingNoticesAndStorageBadge(t *testing.T) {
	ts := newTestServer(t)
	b := browsertest.New(t)
	s := ts.createSession(t)
	customer := customerWaits(t, b, s.CustomerURL)
	specialist := specialistAdmits(t, b, s.SpecialistURL)
	// The notices and the badge need no media: being in the call is enough.
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	must(t, "console in call", browsertest.WaitState(specialist, "in-call", 15*time.Second))

	t.Run("the console shows how many segments wait for storage, and hides it at zero", func(t *testing.T) {
		// The server sends `storage` when its upload backlog changes; a backlog needs object
		// storage to fail, so the frame is put on the session's live channel instead, exactly
		// as the server would deliver it.
		publish := func(n int) {
			frame, err := wire.Encode(wire.TypeStorage, wire.Storage{UploadsBehind: n})
			must(t, "encode", err)
			must(t, "publish", ts.rooms.PublishLive(s.OrganizationID, s.ID, frame))
		}
		badge := `[data-testid="storage-status"]`
		if visible, _ := browsertest.Eval[bool](specialist, `!document.querySelector('`+badge+`').hidden`); visible {
			t.Fatal("the storage badge shows with nothing waiting")
		}
		publish(3)
		must(t, "badge shows", browsertest.WaitVisible(specialist, badge, 10*time.Second))
		text, err := browsertest.Text(specialist, badge)
		must(t, "read", err)
		if text != "Uploads behind: 3 segments waiting for storage" {
			t.Errorf("badge says %q", text)
		}
		publish(1)
		must(t, "one segment", browsertest.WaitFor(specialist,
			`document.querySelector('`+badge+`').textContent === 'Uploads behind: 1 segment waiting for storage'`, 10*time.Second))
		publish(0)
		must(t, "badge hides", browsertest.WaitFor(specialist, `document.querySelector('`+badge+`').hidden`, 10*time.Second))
	})

	t.Run("the customer is told before the recording starts", func(t *testing.T) {
		// Watch the console's "starting" status: it may be up only for a moment.
		_, err := browsertest.Eval[bool](specialist, `(() => {
			window.__startingShown = false;
			new MutationObserver((records) => {
				if (records.some((r) => r.oldValue !== null)) window.__startingShown = true;
			}).observe(document.getElementById('recording-starting'), { attributes: true, attributeFilter: ['hidden'], attributeOldValue: true });
			return true;
		})()`)
		must(t, "watch", err)
		notice := `[data-testid="recording-notice"]`
		must(t, "record", browsertest.Click(specialist, `[data-testid="record"]`))
		must(t, "the customer sees the notice", browsertest.WaitVisible(customer, notice, 10*time.Second))
		text, err := browsertest.Text(customer, notice)
		must(t, "read", err)
		if text != "This call is about to be recorded" {
			t.Errorf("the notice says %q", text)
		}
		shown := `!document.querySelector('[data-testid="recording-indicator"]').hidden`
		must(t, "then the indicator", browsertest.WaitFor(customer, shown, 15*time.Second))
		must(t, "the console's indicator", browsertest.WaitFor(specialist, shown, 15*time.Second))
		events := `[...document.querySelectorAll('#chat-list .chat-event-text')].map((e) => e.textContent)`
		got, err := browsertest.Eval[[]string](customer, events)
		must(t, "customer timeline", err)
		if i, j := indexOf(got, "This call is about to be recorded."), indexOf(got, "The specialist started recording this call."); i < 0 || j < 0 || i > j {
			t.Errorf("customer timeline %q: want the notice before the start", got)
		}
		got, err = browsertest.Eval[[]string](specialist, events)
		must(t, "console timeline", err)
		if i, j := indexOf(got, "Recording starting…"), indexOf(got, "Recording started."); i < 0 || j < 0 || i > j {
			t.Errorf("console timeline %q: want starting before started", got)
		}
		if seen, _ := browsertest.Eval[bool](specialist, `window.__startingShown`); !seen {
			t.Error("the console never showed that the recording was starting")
		}
		must(t, "the notice goes once read", browsertest.WaitFor(customer, `document.querySelector('`+notice+`').hidden`, 15*time.Second))
		if visible, _ := browsertest.Eval[bool](customer, shown); !visible {
			t.Error("the recording indicator went with the notice")
		}
		// Stopping is TestBrowserRecordingFromTheConsole's business (it is slow under -race);
		// the server stops this recording when it shuts down.
	})

	for _, tab := range []context.Context{customer, specialist} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}

type markStroke struct {
	ID     string       `json:"id"`
	Tool   string       `json:"tool"`
	Color  string       `json:"color"`
	Text   string       `json:"text"`
	Points [][2]float64 `json:"points"`
}

func selectTool(t *testing.T, tab context.Context, tool string) {
	t.Helper()
	must(t, "pick "+tool, browsertest.Click(tab, `[data-testid="tool-`+tool+`"]`))
}

// waitStrokes waits until expr (a page's list of marks) holds n marks and returns them.
func waitStrokes(t *testing.T, tab context.Context, expr string, n int) []markStroke {
	t.Helper()
	must(t, fmt.Sprintf("%d marks in %s", n, expr), browsertest.WaitFor(tab, fmt.Sprintf(`%s.length === %d`, expr, n), 10*time.Second))
	got, err := browsertest.Eval[[]markStroke](tab, expr)
	must(t, "read marks", err)
	if len(got) != n {
		t.Fatalf("%d marks, want %d", len(got), n)
	}
	return got
}

func samePoints(a, b [][2]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// near: the first and last points are within tol of the wanted ones.
func near(got, want [][2]float64, tol float64) bool {
	if len(got) == 0 || len(want) == 0 {
		return false
	}
	ends := func(p [][2]float64) [][2]float64 { return [][2]float64{p[0], p[len(p)-1]} }
	g, w := ends(got), ends(want)
	for i := range g {
		if math.Abs(g[i][0]-w[i][0]) > tol || math.Abs(g[i][1]-w[i][1]) > tol {
			return false
		}
	}
	return true
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// drag moves a mouse over a canvas through points given in coordinates of the picture under it
// (the <video> or <img> next to it, where object-fit puts it): pressed from the first point to
// the last, or only hovering. The positions are worked out here, not by the page's code.
func drag(tab context.Context, canvas string, points [][2]float64, hover bool) error {
	pts, _ := json.Marshal(points)
	_, err := browsertest.Eval[bool](tab, fmt.Sprintf(`(async (sel, pts, hover) => {
		const c = document.querySelector(sel);
		const m = c.parentElement.querySelector('video, img');
		const box = c.getBoundingClientRect();
		const mw = m.videoWidth ?? m.naturalWidth, mh = m.videoHeight ?? m.naturalHeight;
		const fit = getComputedStyle(m).objectFit;
		const s = fit === 'cover' ? Math.max(box.width / mw, box.height / mh) : Math.min(box.width / mw, box.height / mh);
		const fw = mw * s, fh = mh * s;
		const ox = box.left + (box.width - fw) / 2, oy = box.top + (box.height - fh) / 2;
		const fire = (type, [x, y], buttons) => c.dispatchEvent(new PointerEvent(type, {
			bubbles: true, cancelable: true, pointerId: 7, pointerType: 'mouse', button: 0, buttons,
			clientX: ox + x * fw, clientY: oy + y * fh,
		}));
		const pause = () => new Promise((r) => setTimeout(r, 80));
		if (hover) {
			for (const p of pts) { fire('pointermove', p, 0); await pause(); }
			return true;
		}
		fire('pointerdown', pts[0], 1);
		for (const p of pts.slice(1)) { fire('pointermove', p, 1); await pause(); }
		fire('pointerup', pts[pts.length - 1], 0);
		c.dispatchEvent(new PointerEvent('pointerleave', { pointerId: 7, pointerType: 'mouse' }));
		return true;
	})(%q, %s, %t)`, canvas, pts, hover))
	return err
}

// waitPainted waits until the canvas over a picture is painted (painted=true) or clear
// (painted=false) around a point of the picture's frame: within box (CSS pixels left, top,
// right, bottom of the point), some pixel is opaque enough and, when color is given, of that
// colour. The frame is worked out here from the picture's size, object-fit and mirroring.
func waitPainted(tab context.Context, canvas, media string, at [2]float64, box [4]float64, color string, painted bool) error {
	rgb := [3]int{-1, -1, -1}
	if color != "" {
		fmt.Sscanf(color, "#%02x%02x%02x", &rgb[0], &rgb[1], &rgb[2])
	}
	want := "hits > 0"
	if !painted {
		want = "hits === 0"
	}
	js := fmt.Sprintf(`((csel, msel, at, box, rgb) => {
		const c = document.querySelector(csel), m = document.querySelector(msel);
		if (!c || !m || !c.width) return false;
		const w = c.clientWidth, h = c.clientHeight;
		const mw = m.videoWidth ?? m.naturalWidth, mh = m.videoHeight ?? m.naturalHeight;
		if (!mw || !mh) return false;
		const fit = getComputedStyle(m).objectFit;
		const s = fit === 'cover' ? Math.max(w / mw, h / mh) : Math.min(w / mw, h / mh);
		const fw = mw * s, fh = mh * s;
		const x = m.classList.contains('mirrored') ? 1 - at[0] : at[0];
		const px = (w - fw) / 2 + x * fw, py = (h - fh) / 2 + at[1] * fh;
		const k = c.width / w;
		const x0 = Math.max(0, Math.floor((px + box[0]) * k)), y0 = Math.max(0, Math.floor((py + box[1]) * k));
		const x1 = Math.min(c.width, Math.ceil((px + box[2]) * k)), y1 = Math.min(c.height, Math.ceil((py + box[3]) * k));
		if (x1 <= x0 || y1 <= y0) return false;
		const d = c.getContext('2d').getImageData(x0, y0, x1 - x0, y1 - y0).data;
		let hits = 0;
		for (let i = 0; i < d.length; i += 4) {
			if (d[i + 3] < 96) continue;
			if (rgb[0] < 0 || Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1]) + Math.abs(d[i + 2] - rgb[2]) < 90) hits++;
		}
		return %s;
	})(%q, %q, [%g, %g], [%g, %g, %g, %g], [%d, %d, %d])`, want, canvas, media, at[0], at[1], box[0], box[1], box[2], box[3], rgb[0], rgb[1], rgb[2])
	return browsertest.WaitFor(tab, js, 5*time.Second)
}

// blankCanvasJS is true when nothing is painted on the canvas.
func blankCanvasJS(canvas string) string {
	return fmt.Sprintf(`(() => {
		const c = document.querySelector(%q);
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return false;
		return true;
	})()`, canvas)
}
