package captions

import (
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestSpeechBurstYieldsOneCaption(t *testing.T) {
	ctx := testContext(t)
	stt := newSTTServer(t, func(req sttRequest, n int) sttAnswer {
		return sttAnswer{status: 200, body: whisperJSON("Hello there.", "english")}
	})
	var log captionLog
	p := newTestPipeline(t, stt, nil, &log, nil)
	s := join(t, p, "alice", "en-US", 3)
	join(t, p, "bob", "en-GB", 1)

	m := newMic(t, s, 3)
	m.silent(time.Second)
	m.speak(600 * time.Millisecond)
	m.silent(2 * time.Second)
	waitFor(t, ctx, "a caption", func() bool { return log.count() == 1 })

	// Leave makes the chunker handle everything written and end: nothing more comes.
	p.Leave("alice")
	<-s.done
	got := log.all()
	if len(got) != 1 || len(stt.received()) != 1 {
		t.Fatalf("%d captions from %d requests, want 1 from 1", len(got), len(stt.received()))
	}
	c := got[0]
	if c.ParticipantID != "alice" || c.Seq != 1 || c.Text != "Hello there." || c.Language != "en" || len(c.Translations) != 0 {
		t.Errorf("caption %+v", c)
	}
	if c.StartedAt.IsZero() || c.EndedAt.Before(c.StartedAt) {
		t.Errorf("caption times %v to %v", c.StartedAt, c.EndedAt)
	}
	if req := stt.received()[0]; req.Language != "en" || req.Packets < 30 || req.Packets > 60 {
		t.Errorf("request %+v: want language en and the 30 packets of speech with a little silence", req)
	}
	if tr := p.Transcript(); len(tr) != 1 || tr[0].Text != c.Text {
		t.Errorf("transcript %+v", tr)
	}
	if st := p.Stats(); st.Utterances != 1 || st.Captions != 1 || st.TranscribeErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestCaptionsKeepSpeechOrder(t *testing.T) {
	ctx := testContext(t)
	// The first utterance is long and its transcription slow; the second short and fast.
	stt := newSTTServer(t, func(req sttRequest, n int) sttAnswer {
		if req.Packets > 60 {
			return sttAnswer{status: 200, body: whisperJSON("First, a long sentence.", "english"), delay: 600 * time.Millisecond}
		}
		return sttAnswer{status: 200, body: whisperJSON("Second.", "english")}
	})
	var log captionLog
	p := newTestPipeline(t, stt, nil, &log, nil)
	s := join(t, p, "alice", "en", 3)
	m := newMic(t, s, 3)
	m.speak(2 * time.Second)
	m.silent(time.Second)
	m.speak(300 * time.Millisecond)
	m.silent(time.Second)

	waitFor(t, ctx, "two captions", func() bool { return log.count() == 2 })
	stt.mu.Lock()
	answered := slices.Clone(stt.answered)
	stt.mu.Unlock()
	var slow int
	for i, req := range stt.received() {
		if req.Packets > 60 {
			slow = i + 1
		}
	}
	if len(answered) != 2 || answered[0] == slow {
		t.Fatalf("answers in order %v (slow request %d): the test needs the second answer first", answered, slow)
	}
	got := log.all()
	if got[0].Text != "First, a long sentence." || got[0].Seq != 1 || got[1].Text != "Second." || got[1].Seq != 2 {
		t.Errorf("captions %q (seq %d), %q (seq %d): want speech order", got[0].Text, got[0].Seq, got[1].Text, got[1].Seq)
	}
}

func TestLanguageRouting(t *testing.T) {
	cases := []struct {
		name                     string
		speaker, reader          string // the participants' language settings
		heard, said              string // what the transcriber detects and returns
		wantLanguage             string
		wantTranslations         []Translation
		wantRequest              *mtRequest
		wantTranscriptionLangSet string // the language hint sent
	}{
		{
			name: "English speaker, French reader: the caption carries French", speaker: "en", reader: "fr",
			heard: "english", said: "Hello.", wantLanguage: "en",
			wantTranslations:         []Translation{{"fr", "Bonjour."}},
			wantRequest:              &mtRequest{Q: "Hello.", Source: "en", Target: "fr", Format: "text", APIKey: "lt-key"},
			wantTranscriptionLangSet: "en",
		},
		{
			name: "same language: no translation is asked for", speaker: "fr-FR", reader: "fr-CA",
			heard: "french", said: "Bonjour.", wantLanguage: "fr", wantTranscriptionLangSet: "fr",
		},
		{
			name: "unknown speaker language: the detected one is translated", speaker: "", reader: "en",
			heard: "french", said: "Bonjour.", wantLanguage: "fr",
			wantTranslations: []Translation{{"en", "Hello."}},
			wantRequest:      &mtRequest{Q: "Bonjour.", Source: "fr", Target: "en", Format: "text", APIKey: "lt-key"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			stt := newSTTServer(t, func(sttRequest, int) sttAnswer {
				return sttAnswer{status: 200, body: whisperJSON(tc.said, tc.heard)}
			})
			mt := newMTServer(t, map[string]string{"en>fr:Hello.": "Bonjour.", "fr>en:Bonjour.": "Hello."})
			var log captionLog
			p := newTestPipeline(t, stt, mt, &log, nil)
			s := join(t, p, "customer", tc.speaker, 3)
			join(t, p, "specialist", tc.reader, 3)
			m := newMic(t, s, 3)
			m.speak(500 * time.Millisecond)
			m.silent(time.Second)
			waitFor(t, ctx, "a caption", func() bool { return log.count() == 1 })

			c := log.all()[0]
			if c.Language != tc.wantLanguage || !slices.Equal(c.Translations, tc.wantTranslations) {
				t.Errorf("caption in %q with translations %v, want %q with %v", c.Language, c.Translations, tc.wantLanguage, tc.wantTranslations)
			}
			if got := c.TextFor(tc.reader); tc.wantTranslations != nil && got != tc.wantTranslations[0].Text {
				t.Errorf("TextFor(%q) = %q", tc.reader, got)
			}
			if got := stt.received()[0].Language; got != tc.wantTranscriptionLangSet {
				t.Errorf("language hint %q, want %q", got, tc.wantTranscriptionLangSet)
			}
			reqs := mt.received()
			switch {
			case tc.wantRequest == nil && len(reqs) != 0:
				t.Errorf("translation requests %+v, want none", reqs)
			case tc.wantRequest != nil && (len(reqs) != 1 || reqs[0] != *tc.wantRequest):
				t.Errorf("translation requests %+v, want %+v", reqs, *tc.wantRequest)
			}
		})
	}
}

func TestTranslateTextForChat(t *testing.T) {
	ctx := testContext(t)
	stt := newSTTServer(t, func(sttRequest, int) sttAnswer { return sttAnswer{status: 200, body: `{"text":""}`} })
	mt := newMTServer(t, map[string]string{"en>fr:Can you see the valve?": "Voyez-vous la vanne ?"})
	var log captionLog
	p := newTestPipeline(t, stt, mt, &log, func(c *Config) {
		c.TranslatorBreaker = NewBreaker("translator", BreakerConfig{Failures: 1, MinBackoff: time.Hour}, testLogger(t))
	})

	got, err := p.TranslateText(ctx, "Can you see the valve?", "en-US", "fr")
	if err != nil || got != "Voyez-vous la vanne ?" {
		t.Fatalf("TranslateText = %q, %v", got, err)
	}
	if got, err := p.TranslateText(ctx, "Same language.", "fr", "fr-BE"); err != nil || got != "Same language." || len(mt.received()) != 1 {
		t.Errorf("same language: %q, %v, %d requests", got, err, len(mt.received()))
	}
	// A failure opens the breaker (one failure, for the test): the next call is refused at once.
	if _, err := p.TranslateText(ctx, "Unknown.", "en", "xx"); err == nil {
		t.Fatal("translating into xx succeeded")
	}
	if _, err := p.TranslateText(ctx, "Can you see the valve?", "en", "fr"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("with the breaker open: %v, want ErrUnavailable", err)
	}
	if n := len(mt.received()); n != 2 {
		t.Errorf("%d requests reached the translator, want 2", n)
	}
}

// fastBreakers make a dead provider's backoff short enough for a test.
func fastBreakers(t *testing.T) func(*Config) {
	return func(c *Config) {
		c.TranscriberBreaker = NewBreaker("transcriber", BreakerConfig{Failures: 2, MinBackoff: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, testLogger(t))
		c.RequestTimeout = 500 * time.Millisecond
	}
}

func TestProviderDown(t *testing.T) {
	// Each utterance: 300 ms of speech, closed by 700 ms of silence.
	utterance := func(m *mic) { m.speak(300 * time.Millisecond); m.silent(700 * time.Millisecond) }

	t.Run("errors pause captions, media flows, captions resume", func(t *testing.T) {
		verifyNoLeaks(t)
		ctx := testContext(t)
		var down atomic.Bool
		down.Store(true)
		stt := newSTTServer(t, func(sttRequest, int) sttAnswer {
			if down.Load() {
				return sttAnswer{status: http.StatusInternalServerError, body: `{"error":"failed to load model"}`}
			}
			return sttAnswer{status: 200, body: whisperJSON("Back again.", "english")}
		})
		var log captionLog
		p := newTestPipeline(t, stt, nil, &log, fastBreakers(t))
		s := join(t, p, "alice", "en", 3)
		m := newMic(t, s, 3)
		for range 6 {
			utterance(m)
			settle(t, ctx, s) // faster than real time, but not so fast that packets are dropped
		}
		waitFor(t, ctx, "six utterances to be handled", func() bool {
			st := p.Stats()
			return st.TranscribeErrors+st.UtterancesPaused == 6
		})
		st := p.Stats()
		if log.count() != 0 || st.UtterancesPaused == 0 || len(stt.received()) >= 6 {
			t.Errorf("while down: %d captions, stats %+v, %d requests: want none, and the breaker sparing the provider",
				log.count(), st, len(stt.received()))
		}
		if m.slowest > 50*time.Millisecond {
			t.Errorf("WriteRTP took up to %v while the provider was down", m.slowest)
		}
		if !st.TranscriberPaused || st.PacketsDropped != 0 {
			t.Errorf("stats %+v: want the transcriber paused and no packet lost", st)
		}

		down.Store(false)
		m.realTime = true // the breaker's backoff runs on the clock
		waitFor(t, ctx, "captions to resume", func() bool {
			utterance(m)
			return log.count() > 0
		})
		if c := log.all()[0]; c.Text != "Back again." || c.Seq != 1 {
			t.Errorf("first caption after recovery %+v", c)
		}
		p.Close()
	})

	t.Run("connection refused pauses captions until the server is back", func(t *testing.T) {
		ctx := testContext(t)
		addr := closedAddr(t)
		tr, err := NewOpenAITranscriber(OpenAIConfig{BaseURL: "http://" + addr, Client: testClient(t)})
		if err != nil {
			t.Fatal(err)
		}
		var log captionLog
		cfg := Config{Transcriber: tr, OnCaption: log.add, Logger: testLogger(t)}
		fastBreakers(t)(&cfg)
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		s := join(t, p, "alice", "en", 3)
		m := newMic(t, s, 3)
		for range 4 {
			utterance(m)
			settle(t, ctx, s)
		}
		waitFor(t, ctx, "four utterances to be handled", func() bool {
			st := p.Stats()
			return st.TranscribeErrors+st.UtterancesPaused == 4
		})
		if log.count() != 0 {
			t.Fatalf("%d captions with nothing listening", log.count())
		}

		stt := newSTTServer(t, func(sttRequest, int) sttAnswer {
			return sttAnswer{status: 200, body: whisperJSON("Reconnected.", "english")}
		})
		listenOn(t, addr, stt.srv.Config.Handler)
		m.realTime = true
		waitFor(t, ctx, "captions to resume", func() bool {
			utterance(m)
			return log.count() > 0
		})
	})
}

func TestProviderSlowerThanTheTimeout(t *testing.T) {
	verifyNoLeaks(t)
	ctx := testContext(t)
	stt := newSTTServer(t, func(sttRequest, int) sttAnswer {
		return sttAnswer{status: 200, body: whisperJSON("Too late.", "english"), delay: 10 * time.Second}
	})
	var log captionLog
	p := newTestPipeline(t, stt, nil, &log, func(c *Config) { c.RequestTimeout = 200 * time.Millisecond })
	s := join(t, p, "alice", "en", 3)
	m := newMic(t, s, 3)
	m.speak(300 * time.Millisecond)
	m.silent(time.Second)
	m.speak(300 * time.Millisecond)
	m.silent(time.Second)
	waitFor(t, ctx, "both requests to time out", func() bool { return p.Stats().TranscribeErrors == 2 })
	if log.count() != 0 {
		t.Errorf("%d captions from a provider slower than the timeout", log.count())
	}
	if m.slowest > 50*time.Millisecond {
		t.Errorf("WriteRTP took up to %v", m.slowest)
	}
	p.Close()
	stt.srv.Close() // returns once the handlers have seen their clients go
}

func TestCaptionLatency(t *testing.T) {
	ctx := testContext(t)
	stt := newSTTServer(t, func(sttRequest, int) sttAnswer {
		return sttAnswer{status: 200, body: whisperJSON("How long did that take?", "english"), delay: 200 * time.Millisecond}
	})
	mt := newMTServer(t, map[string]string{"en>de:How long did that take?": "Wie lange hat das gedauert?"})
	var log captionLog
	p := newTestPipeline(t, stt, mt, &log, nil)
	s := join(t, p, "alice", "en", 3)
	join(t, p, "bob", "de", 3)
	m := newMic(t, s, 3)
	m.realTime = true

	m.silent(200 * time.Millisecond)
	m.speak(1500 * time.Millisecond)
	endOfSpeech := time.Now()
	for log.count() == 0 && ctx.Err() == nil && time.Since(endOfSpeech) < 5*time.Second {
		m.silent(20 * time.Millisecond) // the browser keeps sending silence
	}
	if log.count() == 0 {
		t.Fatal("no caption within 5 s of the end of speech")
	}
	log.mu.Lock()
	latency := log.at[0].Sub(endOfSpeech)
	log.mu.Unlock()
	t.Logf("caption %v after the end of speech (600 ms of silence closes it, the provider takes 200 ms)", latency)
	// About 0.8 s of it is by design (silence that closes the utterance, the provider); the
	// bound leaves room for a machine busy with other tests, and still fails if an utterance
	// waited for its 8 s maximum length instead of the silence.
	if latency > 4*time.Second {
		t.Errorf("caption came %v after the end of speech, want within about 2 s (4 s allowed on a busy machine)", latency)
	}
	if c := log.all()[0]; c.TextFor("de") != "Wie lange hat das gedauert?" {
		t.Errorf("caption %+v", c)
	}
}

func TestBreaker(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBreaker("test", BreakerConfig{Failures: 2, MinBackoff: time.Second, MaxBackoff: 4 * time.Second}, nil)
	b.now = func() time.Time { return now }
	fail := errors.New("down")
	step := func(d time.Duration) { now = now.Add(d) }

	b.Allow()
	b.Record(fail)
	if !b.Allow() {
		t.Fatal("open after one failure of two")
	}
	b.Record(fail)
	if b.Allow() {
		t.Fatal("closed after two failures")
	}
	for _, backoff := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		step(backoff - time.Millisecond)
		if b.Allow() {
			t.Fatalf("probe allowed before the %v backoff ended", backoff)
		}
		step(time.Millisecond)
		if !b.Allow() {
			t.Fatalf("no probe after the %v backoff", backoff)
		}
		if b.Allow() {
			t.Fatal("two probes at once")
		}
		b.Record(fail)
	}
	step(4 * time.Second)
	if !b.Allow() {
		t.Fatal("no probe")
	}
	b.Record(nil)
	if b.Open() || !b.Allow() || !b.Allow() {
		t.Fatal("still open after a successful probe")
	}
}

// verifyNoLeaks checks, once the test and all its cleanups are done (servers closed, idle
// connections dropped), that no goroutine it started is still running.
func verifyNoLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}
