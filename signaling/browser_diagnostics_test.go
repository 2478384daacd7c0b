package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/assist-video/assist/signaling/wire"
	"github.com/assist-video/assist/webclient/browsertest"
)

// The setup test in a real Chromium with fake devices, through the real echo on loopback.
// The machine may be loaded: figures are checked for presence and sanity, not for tight
// values.

// readDiagnostics decodes the result the page holds (window.assistDebug.diagnostics()).
func readDiagnostics(t *testing.T, raw string) wire.DiagnosticsSend {
	t.Helper()
	var d wire.DiagnosticsSend
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("the page's result %q: %v", raw, err)
	}
	// What the page sends must pass the server's own validation.
	frame, _ := json.Marshal(map[string]any{"type": wire.TypeDiagnostics, "payload": json.RawMessage(raw)})
	if _, _, err := wire.Decode(frame); err != nil {
		t.Fatalf("the page's result does not validate: %v\n%s", err, raw)
	}
	return d
}

// checkFigures: a loopback test over UDP has every figure, and sane ones.
func checkFigures(t *testing.T, d wire.DiagnosticsSend) {
	t.Helper()
	n := d.Network
	if n == nil {
		t.Fatalf("no network figures: %+v", d)
	}
	if n.Transport != "udp" || n.CandidateType != "host" {
		t.Errorf("transport %q (%q), want udp between host candidates on loopback", n.Transport, n.CandidateType)
	}
	for name, v := range map[string]*float64{"rtt_ms": n.RTTMs, "jitter_ms": n.JitterMs, "loss_pct": n.LossPct, "send_kbps": n.SendKbps} {
		if v == nil {
			t.Errorf("%s is missing", name)
		}
	}
	if n.RTTMs != nil && *n.RTTMs > 1000 {
		t.Errorf("rtt_ms = %v on loopback", *n.RTTMs)
	}
	if n.LossPct != nil && *n.LossPct > 20 {
		t.Errorf("loss_pct = %v on loopback", *n.LossPct)
	}
	if n.SendKbps != nil && *n.SendKbps < 20 {
		t.Errorf("send_kbps = %v: the browser hardly sent anything", *n.SendKbps)
	}
	if d.Camera != wire.DeviceOK {
		t.Errorf("camera = %q with a fake camera", d.Camera)
	}
	if d.Microphone != wire.DeviceOK && d.Microphone != wire.DeviceSilent {
		t.Errorf("microphone = %q with a fake microphone", d.Microphone)
	}
}

const resultJSON = `JSON.stringify(window.assistDebug.diagnostics())`

func TestBrowserSetupTestPage(t *testing.T) {
	ts := newTestServer(t)
	b := browsertest.New(t)
	tab := b.NewNamedTab(t, "tester")

	must(t, "open /test", browsertest.Navigate(tab, ts.URL+"/test"))
	must(t, "page idle", browsertest.WaitState(tab, "idle", 10*time.Second))
	must(t, "start", browsertest.Click(tab, `[data-testid="diag-start"]`))
	must(t, "the preview shows the camera", browsertest.WaitFor(tab,
		`document.querySelector('[data-testid="diag-preview"]').videoWidth > 0`, 15*time.Second))
	must(t, "the test finishes", browsertest.WaitState(tab, "done", 60*time.Second))

	raw, err := browsertest.Eval[string](tab, resultJSON)
	must(t, "read the result", err)
	t.Logf("result: %s", raw)
	d := readDiagnostics(t, raw)
	checkFigures(t, d)
	if d.Verdict != wire.VerdictGood {
		t.Errorf("verdict = %q (problems %v) on loopback with fake devices, want good", d.Verdict, d.Problems)
	}
	shown, err := browsertest.Eval[string](tab, `document.querySelector('[data-testid="diag-verdict"]')?.dataset.verdict ?? ''`)
	must(t, "read the verdict shown", err)
	if shown != d.Verdict {
		t.Errorf("the page shows verdict %q, the result says %q", shown, d.Verdict)
	}
	if errs := browsertest.Errors(tab); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}

func TestBrowserSetupTestWhileWaiting(t *testing.T) {
	ts := newTestServer(t)
	b := browsertest.New(t)
	s := ts.createSession(t)

	specialist := b.NewNamedTab(t, "specialist")
	must(t, "open specialist link", browsertest.Navigate(specialist, s.SpecialistURL))
	must(t, "specialist in the session", browsertest.WaitState(specialist, "in-call", 15*time.Second))

	customer := customerWaits(t, b, s.CustomerURL)
	must(t, "the setup test finishes while waiting", browsertest.WaitFor(customer,
		`!!window.assistDebug.diagnostics()`, 60*time.Second))
	raw, err := browsertest.Eval[string](customer, resultJSON)
	must(t, "read the result", err)
	t.Logf("result: %s", raw)
	d := readDiagnostics(t, raw)
	checkFigures(t, d)
	must(t, "the customer sees the verdict", browsertest.WaitVisible(customer, `[data-testid="waiting-diag-result"] [data-testid="diag-verdict"]`, 5*time.Second))

	id, err := browsertest.Eval[string](customer, `window.assistDebug.participantId()`)
	must(t, "customer id", err)
	line := fmt.Sprintf(`#queue-list [data-testid="diagnostics"][data-participant-id=%q]`, id)
	must(t, "the console shows the result next to the waiting customer", browsertest.WaitVisible(specialist, line, 15*time.Second))
	shown, err := browsertest.Eval[string](specialist, fmt.Sprintf(`document.querySelector(%q).dataset.verdict`, line))
	must(t, "read the console's verdict", err)
	if shown != d.Verdict {
		t.Errorf("the console shows verdict %q, the customer's result says %q", shown, d.Verdict)
	}
	text, err := browsertest.Text(specialist, line)
	must(t, "read the console's line", err)
	if text == "" {
		t.Error("the console's line is empty")
	}
	t.Logf("console: %q", text)

	found := false
	for _, e := range ts.getSession(t, s.ID).Timeline {
		var got wire.Diagnostics
		if e.Type == wire.TypeDiagnostics && json.Unmarshal(e.Payload, &got) == nil && got.Verdict == d.Verdict && got.From.ParticipantID == id {
			found = true
		}
	}
	if !found {
		t.Error("the session API has no diagnostics entry from the customer")
	}
	for _, tab := range []context.Context{customer, specialist} {
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("page errors: %v", errs)
		}
	}
}
