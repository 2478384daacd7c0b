package signaling

import (
	"testing"
	"time"

	"github.com/assist-video/assist/media/captions"
	"github.com/assist-video/assist/webclient/browsertest"
)

// TestBrowserCaptionsAppearOnTheOtherPage runs captions end to end in Chromium: the customer's
// fake microphone beeps (a short tone every half second, sent with the audio level), the
// server cuts the beeps into utterances, the fake speech-to-text server "hears" a sentence in
// each, and the console, which reads French (?lang=fr on its link), shows it translated, with
// the original beside it; the toggle hides the strip. The console's French chat reaches the
// customer with an English translation under it.
func TestBrowserCaptionsAppearOnTheOtherPage(t *testing.T) {
	stt := newFakeSTT(t, "Can you hear me?")
	stt.quietAfter = 4 // a few captions each way, then no more work for a loaded machine
	mt := newFakeTranslate(t, map[string]string{
		"en>fr:Can you hear me?":     "Vous m'entendez ?",
		"fr>en:Bonjour, je regarde.": "Hello, I am looking.",
	})
	ts := startTestServer(t, captionsConfig(t, stt, mt))
	// Chromium's beeps are a few tens of milliseconds long, half a second apart: shorter than
	// speech, so the chunker is told to keep short sounds and cut at shorter pauses.
	ts.captions.chunking.Store(&captions.ChunkConfig{MinSpeech: 10 * time.Millisecond, Silence: 300 * time.Millisecond})
	browser := browsertest.New(t)
	s := ts.createSession(t)

	customer := customerWaits(t, browser, s.CustomerURL)
	specialist := specialistAdmits(t, browser, s.SpecialistURL+"?lang=fr")
	must(t, "customer in call", browsertest.WaitState(customer, "in-call", 15*time.Second))

	caption := `[data-testid="captions-strip"] [data-testid="caption"]`
	must(t, "a translated caption of the customer appears on the console", browsertest.WaitFor(specialist,
		`[...document.querySelectorAll('`+caption+`')].some((e) =>
			e.querySelector('[data-testid="caption-text"]')?.textContent === "Vous m'entendez ?" &&
			e.querySelector('[data-testid="caption-original"]')?.textContent === ' (Can you hear me?)')`, 30*time.Second))
	must(t, "the strip and its toggle are shown", browsertest.WaitFor(specialist,
		`!document.querySelector('[data-testid="captions-strip"]').hidden && !document.querySelector('[data-testid="captions-toggle"]').hidden`, 5*time.Second))

	must(t, "hide captions", browsertest.Click(specialist, `[data-testid="captions-toggle"]`))
	must(t, "the strip is hidden", browsertest.WaitFor(specialist,
		`document.querySelector('[data-testid="captions-strip"]').hidden && document.querySelector('[data-testid="captions-toggle"]').getAttribute('aria-pressed') === 'false'`, 5*time.Second))

	must(t, "the customer, who reads English, sees the specialist's beeps in English", browsertest.WaitFor(customer,
		`[...document.querySelectorAll('`+caption+` [data-testid="caption-text"]')].some((e) => e.textContent === 'Can you hear me?')`, 30*time.Second))

	sendChat(t, specialist, "Bonjour, je regarde.")
	must(t, "the customer reads the chat with its translation under the original", browsertest.WaitFor(customer,
		`[...document.querySelectorAll('#chat-list .chat-message')].some((e) =>
			e.querySelector('.chat-text')?.textContent === 'Bonjour, je regarde.' &&
			e.querySelector('[data-testid="chat-translation"]')?.textContent === 'Hello, I am looking.')`, 15*time.Second))

	for _, tab := range []struct {
		name string
		errs []string
	}{{"customer", browsertest.Errors(customer)}, {"specialist", browsertest.Errors(specialist)}} {
		if len(tab.errs) > 0 {
			t.Errorf("%s page errors: %v", tab.name, tab.errs)
		}
	}
}
