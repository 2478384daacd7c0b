package captions

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// oneUtterance is a real Ogg/Opus file of half a second of the tone.
func oneUtterance(t *testing.T) []byte {
	t.Helper()
	var packets []chunkPacket
	for i, p := range tonePackets(t)[:25] {
		packets = append(packets, chunkPacket{ts: uint32(i * 960), seq: uint16(i), at: int64(i * 960), payload: p})
	}
	ogg, err := encodeOgg(packets, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ogg
}

func TestOpenAITranscriber(t *testing.T) {
	ctx := testContext(t)
	ogg := oneUtterance(t)

	t.Run("sends a well-formed multipart request and reads verbose_json", func(t *testing.T) {
		stt := newSTTServer(t, func(sttRequest, int) sttAnswer {
			return sttAnswer{status: 200, body: whisperJSON("Hello there.", "english")}
		})
		// A base URL ending in /v1, as OpenAI SDKs take it, reaches the same endpoint.
		for _, base := range []string{stt.srv.URL, stt.srv.URL + "/v1/"} {
			tr, err := NewOpenAITranscriber(OpenAIConfig{BaseURL: base, APIKey: "sk-test", Client: testClient(t)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := tr.Transcribe(ctx, ogg, "en-GB")
			if err != nil {
				t.Fatal(err)
			}
			if got != (Transcription{Text: "Hello there.", Language: "en"}) {
				t.Errorf("Transcribe = %+v", got)
			}
		}
		for _, req := range stt.received() {
			if req.Language != "en" || req.Model != "whisper-1" || req.Format != "verbose_json" || req.Auth != "Bearer sk-test" || req.Packets != 25 {
				t.Errorf("request %+v", req)
			}
		}
	})

	t.Run("leaves language out to ask for detection and reads plain json", func(t *testing.T) {
		stt := newSTTServer(t, func(sttRequest, int) sttAnswer {
			return sttAnswer{status: 200, body: `{"text":"Bonjour."}`}
		})
		tr, err := NewOpenAITranscriber(OpenAIConfig{BaseURL: stt.srv.URL, Model: "large-v3", ResponseFormat: "json", Client: testClient(t)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tr.Transcribe(ctx, ogg, "")
		if err != nil || got != (Transcription{Text: "Bonjour."}) {
			t.Fatalf("Transcribe = %+v, %v", got, err)
		}
		req := stt.received()[0]
		if req.Language != "" || req.Model != "large-v3" || req.Format != "json" || req.Auth != "" {
			t.Errorf("request %+v", req)
		}
	})

	t.Run("returns the provider's error", func(t *testing.T) {
		stt := newSTTServer(t, func(sttRequest, int) sttAnswer {
			return sttAnswer{status: 500, body: `{"error":{"message":"model not loaded","type":"server_error"}}`}
		})
		tr, _ := NewOpenAITranscriber(OpenAIConfig{BaseURL: stt.srv.URL, Client: testClient(t)})
		_, err := tr.Transcribe(ctx, ogg, "en")
		var pe *ProviderError
		if !errors.As(err, &pe) || pe.StatusCode != 500 || pe.Message != "model not loaded" {
			t.Fatalf("Transcribe error = %v", err)
		}
	})

	t.Run("fails fast when nothing listens", func(t *testing.T) {
		tr, _ := NewOpenAITranscriber(OpenAIConfig{BaseURL: "http://" + closedAddr(t), Client: testClient(t)})
		if _, err := tr.Transcribe(ctx, ogg, "en"); err == nil {
			t.Fatal("Transcribe to a closed port succeeded")
		}
	})

	t.Run("rejects a bad configuration", func(t *testing.T) {
		for _, cfg := range []OpenAIConfig{{BaseURL: "whisper:8080"}, {BaseURL: "ftp://x"}, {BaseURL: "http://x", ResponseFormat: "srt"}} {
			if _, err := NewOpenAITranscriber(cfg); err == nil {
				t.Errorf("NewOpenAITranscriber(%+v) succeeded", cfg)
			}
		}
	})
}

func TestLibreTranslate(t *testing.T) {
	ctx := testContext(t)
	mt := newMTServer(t, map[string]string{"en>fr:Hello.": "Bonjour."})
	lt, err := NewLibreTranslate(LibreTranslateConfig{BaseURL: mt.srv.URL, APIKey: "lt-key", Client: testClient(t)})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("posts q, source, target, format and api_key", func(t *testing.T) {
		got, err := lt.Translate(ctx, "Hello.", "en-US", "FR")
		if err != nil || got != "Bonjour." {
			t.Fatalf("Translate = %q, %v", got, err)
		}
		want := mtRequest{Q: "Hello.", Source: "en", Target: "fr", Format: "text", APIKey: "lt-key"}
		if req := mt.received()[0]; req != want {
			t.Errorf("request %+v, want %+v", req, want)
		}
	})

	t.Run("returns the provider's error", func(t *testing.T) {
		_, err := lt.Translate(ctx, "Hello.", "en", "xx")
		var pe *ProviderError
		if !errors.As(err, &pe) || pe.StatusCode != 400 || pe.Message != "xx is not supported" {
			t.Fatalf("Translate error = %v", err)
		}
	})

	t.Run("asks for detection without a source", func(t *testing.T) {
		_, _ = lt.Translate(ctx, "Hello.", "", "fr")
		reqs := mt.received()
		if got := reqs[len(reqs)-1].Source; got != "auto" {
			t.Errorf("source = %q, want auto", got)
		}
	})
}

func TestLanguageCode(t *testing.T) {
	for in, want := range map[string]string{
		"english": "en", "French": "fr", "en": "en", "pt-BR": "pt", "jw": "jv", "cantonese": "yue", "": "", "klingonese": "",
	} {
		if got := languageCode(in); got != want {
			t.Errorf("languageCode(%q) = %q, want %q", in, got, want)
		}
	}
}

// closedAddr is a loopback address where nothing listens (connection refused).
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// listenOn starts an HTTP server on addr (one a test first left closed).
func listenOn(t *testing.T, addr string, h http.Handler) {
	t.Helper()
	var l net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		if l, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen on %s again: %v", addr, err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}
