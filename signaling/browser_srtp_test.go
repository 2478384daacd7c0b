package signaling

import (
	"context"
	"testing"
	"time"

	"github.com/assist-video/assist/webclient/browsertest"
)

// srtpTransport is the SRTP cipher and DTLS role of the page's call as Chromium reports them
// (the transport entry of getStats), "cipher/role", or "" before DTLS is up.
const srtpTransport = `(async () => {
  const pc = window.assistDebug && window.assistDebug.pc();
  if (!pc) return '';
  let out = '';
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'transport' && r.srtpCipher) out = r.srtpCipher + '/' + (r.dtlsRole || '');
  });
  return out;
})()`

// TestBrowserCallsAreEncryptedWithAES128GCM: the SFU encrypts every forwarded packet once per
// subscriber, so the SRTP profile is paid per write; media/srtp.go prefers AES-128-GCM and
// answers as the DTLS server, because Chromium as the server would pick AES-CM with
// HMAC-SHA1. A real Chromium must end up with AES-128-GCM (and as the DTLS client).
func TestBrowserCallsAreEncryptedWithAES128GCM(t *testing.T) {
	ts := newTestServer(t)
	browser := browsertest.New(t)
	s := ts.createSession(t)
	customer, specialist := browser.NewNamedTab(t, "customer"), browser.NewNamedTab(t, "specialist")
	must(t, "open customer link", browsertest.Navigate(customer, s.CustomerURL))
	must(t, "join", browsertest.Click(customer, `[data-testid="join"]`))
	must(t, "customer waits", browsertest.WaitState(customer, "waiting", 10*time.Second))
	must(t, "open specialist link", browsertest.Navigate(specialist, s.SpecialistURL))
	must(t, "waiting customer appears", browsertest.WaitVisible(specialist, `[data-testid="admit"]`, 15*time.Second))
	must(t, "admit", browsertest.Click(specialist, `[data-testid="admit"]`))
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))
	for role, tab := range map[string]context.Context{"customer": customer, "specialist": specialist} {
		must(t, role+" decodes video", browsertest.WaitFramesDecoded(tab, 10, 40*time.Second))
		got, err := browsertest.Eval[string](tab, srtpTransport)
		if err != nil || got != "SRTP_AEAD_AES_128_GCM/client" {
			t.Fatalf("%s's call: SRTP cipher/DTLS role %q (%v), want SRTP_AEAD_AES_128_GCM/client", role, got, err)
		}
	}
}
