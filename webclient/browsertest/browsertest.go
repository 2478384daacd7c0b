// Package browsertest drives a real Chromium for end-to-end tests of
// Assist's pages: one headless browser per test, one isolated browser
// context (its own cookies, storage and permissions) per participant, fake
// camera and microphone, and the page's console errors in the test log.
//
//	b := browsertest.New(t)
//	customer := b.NewNamedTab(t, "customer")
//	specialist := b.NewNamedTab(t, "specialist")
//	if err := browsertest.Navigate(customer, srv.URL+"/c/"+token); err != nil { ... }
//	if err := browsertest.Click(customer, "#join-button"); err != nil { ... }
//	if err := browsertest.WaitState(customer, "waiting", 10*time.Second); err != nil { ... }
//
// The helpers take the tab's context and return errors rather than failing
// the test, so they can run in goroutines; wrap them with t.Fatal.
// The pages' hooks (document.body.dataset.state, window.assistDebug) are
// described in the webclient package.
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultExecPath is where Debian's chromium package puts the browser.
// ASSIST_CHROMIUM overrides it.
const DefaultExecPath = "/usr/bin/chromium"

// installHint is the message a test fails with when there is no browser.
const installHint = "install chromium: apt-get install -y chromium"

// actionTimeout bounds the helpers that take no timeout (Click, Type, …).
const actionTimeout = 15 * time.Second

// Browser is one headless Chromium process, stopped at the end of the test.
type Browser struct {
	ctx    context.Context // the chromedp context that owns the process
	output *lockedBuffer
	tabs   atomic.Int32
}

// ExecPath returns the Chromium binary to use: $ASSIST_CHROMIUM, else
// /usr/bin/chromium, else chromium or chromium-browser on $PATH. It returns
// an error that says how to install Chromium when there is none.
func ExecPath() (string, error) {
	if p := os.Getenv("ASSIST_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("browsertest: ASSIST_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	if _, err := os.Stat(DefaultExecPath); err == nil {
		return DefaultExecPath, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("browsertest: Chromium not found at " + DefaultExecPath + "; " + installHint)
}

// New starts a headless Chromium for this test and stops it in t.Cleanup.
// It fails the test (never skips) when Chromium is missing.
func New(t testing.TB) *Browser {
	t.Helper()
	path, err := ExecPath()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		// Media must play in tabs that never got a user gesture.
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: ctx, output: out}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			if tail := out.tail(4096); tail != "" {
				t.Logf("browsertest: the end of Chromium's output:\n%s", tail)
			}
		}
	})

	// The first Run starts the process and binds it to ctx, so it must not
	// get a deadline; a watchdog stops a browser that never comes up.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err = <-started:
	case <-time.After(60 * time.Second):
		cancel()
		err = errors.New("Chromium did not start within 60s")
	}
	if err != nil {
		t.Fatalf("browsertest: starting %s: %v\n%s", path, err, out.tail(4096))
	}
	return b
}

// NewTab opens a tab in a new, isolated browser context (as a separate
// person's browser would be) and returns its context for the helpers and for
// chromedp. The page's console errors and uncaught exceptions go to t.Log.
// The tab closes in t.Cleanup.
func (b *Browser) NewTab(t testing.TB) context.Context {
	t.Helper()
	return b.NewNamedTab(t, fmt.Sprintf("tab%d", b.tabs.Add(1)))
}

// NewNamedTab is NewTab with a name for the log lines ("customer", "specialist").
func (b *Browser) NewNamedTab(t testing.TB, name string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("browsertest: opening tab %s: %v", name, err)
	}
	tab := &tab{name: name}
	ctx = context.WithValue(ctx, tabKey{}, tab)

	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			line := m.String()
			if m.URL != "" {
				line = fmt.Sprintf("%s (%s:%d)", line, m.URL, m.Line+1)
			}
			// HTTP error statuses ("Failed to load resource: … 410")
			// are logged but are not page errors: error pages and
			// refused API calls produce them on purpose.
			if (m.Type == chromedp.ConsoleError && m.Source != "network") || m.IsException() {
				tab.addError(line)
			}
			t.Logf("[%s] %s", name, line)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done // no t.Logf after the test ends
	})
	return ctx
}

type tabKey struct{}

type tab struct {
	name   string
	mu     sync.Mutex
	errors []string
}

func (t *tab) addError(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errors = append(t.errors, s)
}

// Errors returns the console errors and uncaught exceptions the tab's pages
// produced so far: a syntax error in a module, a CSP violation, a failed
// console.error. Responses with HTTP error statuses are logged, not counted.
func Errors(ctx context.Context) []string {
	tab, ok := ctx.Value(tabKey{}).(*tab)
	if !ok {
		return nil
	}
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.errors...)
}

// Navigate opens url in the tab and waits for the load event.
func Navigate(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("browsertest: navigating to %s: %w", url, err)
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page, awaiting it when it
// is a promise, and decodes the result into T.
func Eval[T any](ctx context.Context, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// State returns document.body.dataset.state: idle, connecting, waiting,
// in-call, reconnecting, denied, ended or error ("" before the page's script ran).
func State(ctx context.Context) (string, error) {
	return Eval[string](ctx, `(document.body && document.body.dataset.state) || ""`)
}

// WaitState waits until the page's state is state. On timeout the error
// names the state it was in and the page's status line.
func WaitState(ctx context.Context, state string, timeout time.Duration) error {
	var last string
	err := poll(ctx, timeout, func() (bool, error) {
		s, err := State(ctx)
		if err != nil {
			return false, err
		}
		last = s
		return s == state, nil
	})
	if err != nil {
		status, _ := Eval[string](ctx, `(document.getElementById("status") || {}).textContent || ""`)
		return fmt.Errorf("browsertest: waiting for state %q: the state is %q (status %q): %w", state, last, status, err)
	}
	return nil
}

// FramesDecoded returns window.assistDebug.framesDecoded(): the video frames
// the page's peer connection decoded so far.
func FramesDecoded(ctx context.Context) (int, error) {
	return Eval[int](ctx, `window.assistDebug ? window.assistDebug.framesDecoded() : 0`)
}

// WaitFramesDecoded waits until the page decoded at least min video frames.
func WaitFramesDecoded(ctx context.Context, min int, timeout time.Duration) error {
	var last int
	err := poll(ctx, timeout, func() (bool, error) {
		n, err := FramesDecoded(ctx)
		if err != nil {
			return false, err
		}
		last = n
		return n >= min, nil
	})
	if err != nil {
		return fmt.Errorf("browsertest: waiting for %d decoded video frames: %d so far: %w", min, last, err)
	}
	return nil
}

// WaitFor waits until the JavaScript expression is truthy.
func WaitFor(ctx context.Context, expr string, timeout time.Duration) error {
	err := poll(ctx, timeout, func() (bool, error) {
		return Eval[bool](ctx, "!!("+expr+")")
	})
	if err != nil {
		return fmt.Errorf("browsertest: waiting for %s: %w", expr, err)
	}
	return nil
}

// WaitVisible waits until an element matching the CSS selector is visible.
func WaitVisible(ctx context.Context, selector string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(selector))); err != nil {
		return fmt.Errorf("browsertest: waiting for %s to be visible: %w", selector, err)
	}
	return nil
}

// Click clicks the first element matching the CSS selector, once visible.
func Click(ctx context.Context, selector string) error {
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		return fmt.Errorf("browsertest: clicking %s: %w", selector, err)
	}
	return nil
}

// Type types text into the first element matching the CSS selector, with
// real key events.
func Type(ctx context.Context, selector, text string) error {
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(selector), text)); err != nil {
		return fmt.Errorf("browsertest: typing into %s: %w", selector, err)
	}
	return nil
}

// SetValue sets the value of the first form field matching the CSS selector
// and fires its input and change events (use Type for real key strokes).
func SetValue(ctx context.Context, selector, value string) error {
	sel, err := json.Marshal(selector)
	if err != nil {
		return err
	}
	val, err := json.Marshal(value)
	if err != nil {
		return err
	}
	ok, err := Eval[bool](ctx, fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		if (!el) return false;
		el.value = %s;
		el.dispatchEvent(new Event('input', { bubbles: true }));
		el.dispatchEvent(new Event('change', { bubbles: true }));
		return true;
	})()`, sel, val))
	if err == nil && !ok {
		err = errors.New("no such element")
	}
	if err != nil {
		return fmt.Errorf("browsertest: setting the value of %s: %w", selector, err)
	}
	return nil
}

// Text returns the textContent of the first element matching the CSS
// selector ("" and no error when nothing matches).
func Text(ctx context.Context, selector string) (string, error) {
	sel, err := json.Marshal(selector)
	if err != nil {
		return "", err
	}
	return Eval[string](ctx, fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || ""`, sel))
}

// poll calls check every 100 ms until it reports true, the timeout passes or
// ctx ends. Errors from check (a page in the middle of navigating) are
// retried; the last one is reported on timeout.
func poll(ctx context.Context, timeout time.Duration, check func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ok, err := check()
		if err == nil && ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			if lastErr != nil {
				return fmt.Errorf("timed out after %v (last error: %w)", timeout, lastErr)
			}
			return fmt.Errorf("timed out after %v", timeout)
		case <-tick.C:
		}
	}
}

// lockedBuffer collects Chromium's output for the failure log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		b.buf.Reset() // keep memory bounded; only the tail matters
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var keep []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		// Chromium complains about the missing D-Bus on every start.
		if !strings.Contains(line, "dbus") && strings.TrimSpace(line) != "" {
			keep = append(keep, line)
		}
	}
	s := strings.Join(keep, "\n")
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
