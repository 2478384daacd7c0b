package signaling

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/assist-video/assist/webclient/browsertest"
)

// relayOnly makes every RTCPeerConnection the page creates use TURN relays only, as a browser
// on a network that lets nothing through but the TURN server does (iceTransportPolicy "relay").
const relayOnly = `(() => {
  const Native = window.RTCPeerConnection;
  function RelayOnly(config, ...rest) {
    return new Native({ ...(config || {}), iceTransportPolicy: 'relay' }, ...rest);
  }
  RelayOnly.prototype = Native.prototype;
  Object.setPrototypeOf(RelayOnly, Native);
  window.RTCPeerConnection = RelayOnly;
})();`

// selectedCandidateType is the local candidate type ("host", "srflx", "relay") of the pair the
// page's call uses, or "" before ICE has chosen one.
const selectedCandidateType = `(async () => {
  const pc = window.assistDebug && window.assistDebug.pc();
  if (!pc) return '';
  const stats = await pc.getStats();
  let type = '';
  stats.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) {
      const pair = stats.get(r.selectedCandidatePairId);
      const local = pair && stats.get(pair.localCandidateId);
      if (local) type = local.candidateType;
    }
  });
  return type;
})()`

// TestBrowserCallThroughTURNOnly is issue 7's reach test in a real browser: the customer's and
// the specialist's Chromium may use relay candidates only, and the call still works through the
// embedded TURN server with the per-session credentials the pages get in welcome.
func TestBrowserCallThroughTURNOnly(t *testing.T) {
	ts := newTURNTestServer(t)
	browser := browsertest.New(t)
	s := ts.createSession(t)

	tabs := map[string]context.Context{}
	for _, role := range []string{"customer", "specialist"} {
		tab := browser.NewNamedTab(t, role)
		must(t, "force relay-only ICE in the "+role+"'s page", chromedp.Do(tab, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: relayOnly})
			return err
		})))
		tabs[role] = tab
	}
	customer, specialist := tabs["customer"], tabs["specialist"]
	must(t, "open customer link", browsertest.Navigate(customer, s.CustomerURL))
	must(t, "join", browsertest.Click(customer, `[data-testid="join"]`))
	must(t, "customer waits", browsertest.WaitState(customer, "waiting", 10*time.Second))
	must(t, "open specialist link", browsertest.Navigate(specialist, s.SpecialistURL))
	must(t, "waiting customer appears", browsertest.WaitVisible(specialist, `[data-testid="admit"]`, 15*time.Second))
	must(t, "admit", browsertest.Click(specialist, `[data-testid="admit"]`))
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))

	for role, tab := range tabs {
		must(t, role+" decodes video through TURN", browsertest.WaitFramesDecoded(tab, 10, 60*time.Second))
		typ, err := browsertest.Eval[string](tab, selectedCandidateType)
		if err != nil || typ != "relay" {
			t.Fatalf("%s's media uses a %q candidate (%v), want relay", role, typ, err)
		}
		if errs := browsertest.Errors(tab); len(errs) > 0 {
			t.Errorf("%s page errors: %v", role, errs)
		}
	}
	if ts.turn.Allocations() < 2 {
		t.Fatalf("TURN holds %d allocations, want one per browser", ts.turn.Allocations())
	}
}
