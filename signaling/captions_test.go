package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"go.uber.org/goleak"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

// Fake providers: local HTTP servers speaking the providers' API shapes with answers shaped
// like recorded ones (whisper.cpp's verbose_json, LibreTranslate's JSON).

// fakeSTT is an OpenAI-compatible POST /v1/audio/transcriptions. It answers the nth utterance
// (from 0) with texts[n] (the last one after that); while down, it fails or hangs.
type fakeSTT struct {
	srv   *httptest.Server
	texts []string
	n     atomic.Int64
	// mode: 0 answers, 1 answers 503, 2 hangs until the caller gives up.
	mode     atomic.Int32
	received chan int // utterance sizes, as they arrive
	// quietAfter > 0 answers silence (blank text: no caption) after that many utterances in
	// each language, like Whisper on a room tone.
	quietAfter int
	mu         sync.Mutex
	heard      map[string]int // utterances answered, by language hint
}

func newFakeSTT(t *testing.T, texts ...string) *fakeSTT {
	f := &fakeSTT{texts: texts, received: make(chan int, 64), heard: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/audio/transcriptions" {
			http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
			return
		}
		file, _, err := r.FormFile("file")
		if err != nil {
			http.Error(w, `{"error":{"message":"no file"}}`, http.StatusBadRequest)
			return
		}
		ogg, _ := io.ReadAll(file)
		if !bytes.HasPrefix(ogg, []byte("OggS")) {
			http.Error(w, `{"error":{"message":"not an Ogg file"}}`, http.StatusBadRequest)
			return
		}
		select {
		case f.received <- len(ogg):
		default:
		}
		switch f.mode.Load() {
		case 1:
			http.Error(w, `{"error":{"message":"model is loading"}}`, http.StatusServiceUnavailable)
			return
		case 2:
			<-r.Context().Done()
			return
		}
		n := int(f.n.Add(1) - 1)
		text := f.texts[min(n, len(f.texts)-1)]
		f.mu.Lock()
		f.heard[r.FormValue("language")]++
		if f.quietAfter > 0 && f.heard[r.FormValue("language")] > f.quietAfter {
			text = ""
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"task": "transcribe", "language": "english", "duration": 1.2, "text": " " + text,
			"segments": []map[string]any{{"id": 0, "seek": 0, "start": 0.0, "end": 1.2, "text": " " + text,
				"temperature": 0.0, "avg_logprob": -0.21, "compression_ratio": 0.9, "no_speech_prob": 0.02}},
		})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// fakeTranslate is LibreTranslate's POST /translate with a dictionary of "en>fr:text" answers.
type fakeTranslate struct {
	srv  *httptest.Server
	down atomic.Bool
}

func newFakeTranslate(t *testing.T, answers map[string]string) *fakeTranslate {
	f := &fakeTranslate{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		var req struct {
			Q, Source, Target, Format string
			APIKey                    string `json:"api_key"`
		}
		if r.URL.Path != "/translate" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Format != "text" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"Invalid request"}`)
			return
		}
		if f.down.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"Internal Server Error"}`)
			return
		}
		out, ok := answers[req.Source+">"+req.Target+":"+req.Q]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"`+req.Target+` is not supported"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"translatedText": out})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func captionsConfig(t *testing.T, stt *fakeSTT, mt *fakeTranslate) config.Config {
	cfg := testConfig(t)
	cfg.CaptionsSTTURL = stt.srv.URL
	cfg.CaptionsSTTKey = "stt-key"
	if mt != nil {
		cfg.TranslateURL = mt.srv.URL
	}
	return cfg
}

// captionClient is a participant's socket: it joins with a language and collects what the
// server sends; its Pion peer, when it has one, publishes the microphone (see talker).
type captionClient struct {
	t      *testing.T
	conn   *captionSocket
	id     string
	events chan wire.Envelope
	talker atomic.Pointer[talker] // set once it publishes, read by readLoop

	mu     sync.Mutex
	states []wire.Captions // every captions state received, also those await skipped
	heard  []time.Time     // when each caption arrived
}

// captionsStates is every captions state the client has been sent so far.
func (c *captionClient) captionsStates() []wire.Captions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wire.Captions(nil), c.states...)
}

// waitCaptionsState waits until the latest captions state is paused (or not).
func (c *captionClient) waitCaptionsState(t *testing.T, paused bool, within time.Duration) wire.Captions {
	t.Helper()
	var last wire.Captions
	waitUntil(t, within, fmt.Sprintf("captions paused=%v", paused), func() bool {
		states := c.captionsStates()
		if len(states) == 0 {
			return false
		}
		last = states[len(states)-1]
		return last.Paused == paused
	})
	return last
}

// captionSocket is the test socket with serialized writes.
type captionSocket struct {
	*testSocket
	mu sync.Mutex
}

func (w *captionSocket) write(typ wire.Type, payload any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	raw, _ := json.Marshal(payload)
	_ = w.conn.WriteJSON(wire.Envelope{Type: typ, Payload: raw})
}

func (ts *testServer) joinWithLanguage(t *testing.T, token, name, language string) *captionClient {
	t.Helper()
	c := &captionClient{t: t, conn: &captionSocket{testSocket: ts.dial(t)}, events: make(chan wire.Envelope, 256)}
	go c.readLoop()
	c.conn.write(wire.TypeJoin, wire.Join{Token: token, Name: name, Language: language})
	var welcome wire.Welcome
	c.expect(wire.TypeWelcome, &welcome)
	c.id = welcome.ParticipantID
	return c
}

func (c *captionClient) readLoop() {
	defer close(c.events)
	for {
		var env wire.Envelope
		if err := c.conn.conn.ReadJSON(&env); err != nil {
			return
		}
		tk := c.talker.Load()
		switch {
		case tk != nil && env.Type == wire.TypeDescription:
			var d wire.Description
			_ = json.Unmarshal(env.Payload, &d)
			tk.handleDescription(webrtc.SessionDescription{Type: webrtc.NewSDPType(d.Type), SDP: d.SDP})
		case tk != nil && env.Type == wire.TypeCandidate:
			var cand wire.Candidate
			_ = json.Unmarshal(env.Payload, &cand)
			_ = tk.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: cand.Candidate, SDPMid: cand.SDPMid,
				SDPMLineIndex: cand.SDPMLineIndex, UsernameFragment: cand.UsernameFragment})
		default:
			if env.Type == wire.TypeCaption {
				c.mu.Lock()
				c.heard = append(c.heard, time.Now())
				c.mu.Unlock()
			}
			if env.Type == wire.TypeCaptions {
				var state wire.Captions
				_ = json.Unmarshal(env.Payload, &state)
				c.mu.Lock()
				c.states = append(c.states, state)
				c.mu.Unlock()
			}
			c.events <- env
		}
	}
}

// expect waits for a message of a type, dropping others.
func (c *captionClient) expect(typ wire.Type, out any) {
	c.t.Helper()
	if !c.await(typ, out, 10*time.Second) {
		c.t.Fatalf("%s: no %s within 10s", c.id, typ)
	}
}

func (c *captionClient) await(typ wire.Type, out any, within time.Duration) bool {
	c.t.Helper()
	timeout := time.After(within)
	for {
		select {
		case env, ok := <-c.events:
			if !ok {
				c.t.Fatalf("%s: socket closed while waiting for %s", c.id, typ)
			}
			if env.Type == typ {
				if out != nil {
					if err := json.Unmarshal(env.Payload, out); err != nil {
						c.t.Fatal(err)
					}
				}
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// talker is a Go Pion peer that publishes Opus as a browser's microphone does: with the
// RFC 6464 audio level on every packet, speech at -30 dBov and silence at -127, from the
// mediatest clip. It says what it is told to (say) and is silent otherwise.
type talker struct {
	t      *testing.T
	pc     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	send   func(wire.Type, any)
	frames [][]byte

	mu       sync.Mutex
	speaking time.Time // speak until then
	extID    uint8
	ended    chan time.Time // when each stretch of speech ended
	stop     chan struct{}
	done     chan struct{}
}

func (c *captionClient) publishMicrophone(t *testing.T) *talker {
	t.Helper()
	frames := loadOpusClip(t)
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: media.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "microphone", c.id)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	tk := &talker{t: t, pc: pc, track: track, sender: sender, send: c.conn.write, frames: frames,
		ended: make(chan time.Time, 16), stop: make(chan struct{}), done: make(chan struct{})}
	c.talker.Store(tk)
	go func() {
		for {
			if _, _, err := sender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered // one description with every candidate: no trickling to order
	tk.send(wire.TypeDescription, wire.Description{Type: "offer", SDP: pc.LocalDescription().SDP})
	go tk.pump()
	t.Cleanup(func() {
		close(tk.stop)
		<-tk.done
		_ = pc.Close()
	})
	return tk
}

func (tk *talker) handleDescription(d webrtc.SessionDescription) {
	if err := tk.pc.SetRemoteDescription(d); err != nil {
		tk.t.Logf("talker: remote description: %v", err)
		return
	}
	if d.Type == webrtc.SDPTypeOffer {
		answer, err := tk.pc.CreateAnswer(nil)
		if err == nil {
			err = tk.pc.SetLocalDescription(answer)
		}
		if err != nil {
			tk.t.Logf("talker: answer: %v", err)
			return
		}
		tk.send(wire.TypeDescription, wire.Description{Type: "answer", SDP: tk.pc.LocalDescription().SDP})
	}
	for _, x := range tk.sender.GetParameters().HeaderExtensions {
		if x.URI == media.AudioLevelURI {
			tk.mu.Lock()
			tk.extID = uint8(x.ID)
			tk.mu.Unlock()
		}
	}
}

// say speaks for d from now on, then keeps silent for long enough to end the utterance
// (captions cut at 600 ms of silence); it returns when the speech ended.
func (tk *talker) say(d time.Duration) time.Time {
	tk.mu.Lock()
	tk.speaking = time.Now().Add(d)
	tk.mu.Unlock()
	ended := <-tk.ended
	<-time.After(time.Until(ended.Add(800 * time.Millisecond))) // the microphone's silence
	return ended
}

// pump sends a packet every 20 ms for as long as the talker lives, as a microphone does.
func (tk *talker) pump() {
	defer close(tk.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	i := 0
	wasSpeaking := false
	for {
		select {
		case <-tk.stop:
			return
		case now := <-tick.C:
			tk.mu.Lock()
			speaking, id := now.Before(tk.speaking), tk.extID
			tk.mu.Unlock()
			if wasSpeaking && !speaking {
				tk.ended <- now // buffered; say waits for it
			}
			wasSpeaking = speaking
			level := byte(127)
			if speaking {
				level = 30
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts},
				Payload: tk.frames[i%len(tk.frames)]}
			if id != 0 {
				if err := pkt.Header.SetExtension(id, []byte{level}); err != nil {
					tk.t.Errorf("set extension: %v", err)
				}
			}
			if err := tk.track.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				tk.t.Logf("write rtp: %v", err)
			}
			seq++
			ts += 960
			i++
		}
	}
}

// loadOpusClip reads the Opus packets of media/mediatest's clip (three seconds of a voice).
func loadOpusClip(t *testing.T) [][]byte {
	t.Helper()
	data, err := os.ReadFile("../media/mediatest/testdata/audio.ogg")
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := oggreader.NewWith(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for {
		page, header, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, isHeader := header.HeaderType(page); isHeader || len(page) == 0 {
			continue
		}
		frames = append(frames, page)
	}
	return frames
}

// captionCall is a session in call: a customer (English) who talks, a specialist (French)
// who listens, both with sockets.
type captionCall struct {
	ts                   *testServer
	session              api.Session
	customer, specialist *captionClient
	mic                  *talker
}

func (ts *testServer) startCaptionCall(t *testing.T, customerLang, specialistLang string) *captionCall {
	t.Helper()
	s := ts.createSession(t)
	customer := ts.joinWithLanguage(t, linkToken(s.CustomerURL), "Ann", customerLang)
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.joinWithLanguage(t, linkToken(s.SpecialistURL), "Sam", specialistLang)
	specialist.expect(wire.TypeQueue, nil)
	specialist.conn.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	var state wire.Captions
	customer.expect(wire.TypeCaptions, &state)
	if !state.Available || state.Language != customerLang {
		t.Fatalf("customer's captions state %+v", state)
	}
	mic := customer.publishMicrophone(t)
	waitUntil(t, 10*time.Second, "the microphone's audio level ID is negotiated", func() bool {
		mic.mu.Lock()
		defer mic.mu.Unlock()
		return mic.extID != 0
	})
	return &captionCall{ts: ts, session: s, customer: customer, specialist: specialist, mic: mic}
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCaptionsReachTheOtherParticipantInTheirLanguage(t *testing.T) {
	stt := newFakeSTT(t, "Can you hear me?", "The screen stays black.")
	mt := newFakeTranslate(t, map[string]string{
		"en>fr:Can you hear me?":        "Vous m'entendez ?",
		"en>fr:The screen stays black.": "L'écran reste noir.",
		"fr>en:Bonjour, je regarde.":    "Hello, I am looking.",
		"en>fr:Thanks!":                 "Merci !",
	})
	ts := startTestServer(t, captionsConfig(t, stt, mt))
	call := ts.startCaptionCall(t, "en", "fr")

	want := []string{"Vous m'entendez ?", "L'écran reste noir."}
	originals := []string{"Can you hear me?", "The screen stays black."}
	for i := range want {
		ended := call.mic.say(1200 * time.Millisecond)
		var c wire.Caption
		if !call.specialist.await(wire.TypeCaption, &c, 5*time.Second) {
			t.Fatalf("caption %d did not arrive", i+1)
		}
		call.specialist.mu.Lock()
		late := call.specialist.heard[i].Sub(ended)
		call.specialist.mu.Unlock()
		t.Logf("caption %d arrived %s after the end of speech", i+1, late.Round(time.Millisecond))
		if late > 2*time.Second {
			t.Errorf("caption %d arrived %s after the end of speech, want within 2s", i+1, late)
		}
		if c.Seq != uint64(i+1) || c.Text != want[i] || c.Language != "fr" || c.OriginalText != originals[i] ||
			c.OriginalLanguage != "en" || !c.Final || c.From.ParticipantID != call.customer.id || c.From.Name != "Ann" || len(c.Translations) != 0 {
			t.Errorf("caption %d = %+v", i+1, c)
		}
	}

	t.Run("the speaker does not get their own captions", func(t *testing.T) {
		if call.customer.await(wire.TypeCaption, nil, 300*time.Millisecond) {
			t.Error("the customer got a caption of their own words")
		}
	})

	t.Run("the transcript is in the session's timeline", func(t *testing.T) {
		got := ts.getSession(t, call.session.ID)
		var kept []wire.Caption
		for _, env := range got.Timeline {
			if env.Type == wire.TypeCaption {
				var c wire.Caption
				if err := json.Unmarshal(env.Payload, &c); err != nil {
					t.Fatal(err)
				}
				kept = append(kept, c)
			}
		}
		if len(kept) != 2 {
			t.Fatalf("timeline has %d captions, want 2: %+v", len(kept), got.Timeline)
		}
		for i, c := range kept {
			if c.Text != originals[i] || c.Language != "en" || len(c.Translations) != 1 ||
				c.Translations[0] != (wire.Translation{Language: "fr", Text: want[i]}) || c.EndedAt.Before(c.StartedAt) {
				t.Errorf("kept caption %d = %+v", i+1, c)
			}
		}
	})

	t.Run("chat is translated for the reader, with the original", func(t *testing.T) {
		call.specialist.conn.write(wire.TypeChat, wire.ChatSend{Text: "Bonjour, je regarde."})
		var chat wire.Chat
		call.customer.expect(wire.TypeChat, &chat)
		if chat.Text != "Bonjour, je regarde." || chat.Language != "fr" || chat.Translation == nil ||
			*chat.Translation != (wire.Translation{Language: "en", Text: "Hello, I am looking."}) || len(chat.Translations) != 0 {
			t.Errorf("the customer read %+v", chat)
		}
		var own wire.Chat
		call.specialist.expect(wire.TypeChat, &own)
		if own.Text != "Bonjour, je regarde." || own.Translation != nil {
			t.Errorf("the specialist read their own chat as %+v", own)
		}
		call.customer.conn.write(wire.TypeChat, wire.ChatSend{Text: "Thanks!"})
		call.specialist.expect(wire.TypeChat, &chat)
		if chat.Text != "Thanks!" || chat.Translation == nil || chat.Translation.Text != "Merci !" {
			t.Errorf("the specialist read %+v", chat)
		}
	})
}

func TestCaptionsPauseWhileTheProviderIsDownAndTheCallGoesOn(t *testing.T) {
	stt := newFakeSTT(t, "Back again.")
	mt := newFakeTranslate(t, map[string]string{"en>fr:Back again.": "De retour."})
	http.DefaultClient.CloseIdleConnections()
	before := goleak.IgnoreCurrent()
	t.Run("a call with captions, then the node stops", func(t *testing.T) { captionsThroughAnOutage(t, stt, mt) })
	// The providers' clients share http.DefaultTransport.
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, before)
}

func captionsThroughAnOutage(t *testing.T, stt *fakeSTT, mt *fakeTranslate) {
	ts := startTestServer(t, captionsConfig(t, stt, mt))
	ts.captions.requestTimeout.Store(int64(300 * time.Millisecond))
	call := ts.startCaptionCall(t, "en", "fr")

	for _, mode := range []struct {
		name string
		mode int32
	}{{"the provider hangs", 2}, {"the provider answers 503", 1}} {
		t.Run(mode.name, func(t *testing.T) {
			stt.mode.Store(mode.mode)
			// Three failed utterances in a row open the breaker: captions pause. (A loaded
			// machine may merge utterances: the customer talks on until they do.)
			paused := func() bool {
				st := call.specialist.captionsStates()
				return len(st) > 0 && st[len(st)-1].Paused
			}
			for deadline := time.Now().Add(30 * time.Second); !paused() && time.Now().Before(deadline); {
				call.mic.say(300 * time.Millisecond)
			}
			state := call.specialist.waitCaptionsState(t, true, 5*time.Second)
			if state.Language != "fr" || !state.Translated {
				t.Errorf("captions state %+v", state)
			}
			// The call goes on: chat is kept and relayed, the socket answers, media flows.
			call.specialist.conn.write(wire.TypeChat, wire.ChatSend{Text: "Still there?"})
			call.customer.expect(wire.TypeChat, nil)
			waitUntil(t, 5*time.Second, "the customer's audio still reaches the SFU", func() bool {
				for _, p := range ts.getSession(t, call.session.ID).Participants {
					for _, tr := range p.Tracks {
						if tr.Kind == "audio" && tr.PacketsReceived > 0 {
							return true
						}
					}
				}
				return false
			})

			// The provider is back: the breaker's probe succeeds and captions resume.
			stt.mode.Store(0)
			deadline := time.Now().Add(30 * time.Second)
			var c wire.Caption
			for {
				call.mic.say(400 * time.Millisecond)
				if call.specialist.await(wire.TypeCaption, &c, 3*time.Second) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("captions did not resume")
				}
			}
			if c.Text != "De retour." || c.OriginalText != "Back again." {
				t.Errorf("caption after the outage %+v", c)
			}
			call.specialist.waitCaptionsState(t, false, 5*time.Second)
		})
	}

	t.Run("a translator that is down leaves captions in the original", func(t *testing.T) {
		mt.down.Store(true)
		defer mt.down.Store(false)
		var c wire.Caption
		deadline := time.Now().Add(30 * time.Second)
		for {
			call.mic.say(400 * time.Millisecond)
			if call.specialist.await(wire.TypeCaption, &c, 3*time.Second) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no caption while the translator is down")
			}
		}
		if c.Text != "Back again." || c.Language != "en" || c.OriginalText != "" {
			t.Errorf("caption %+v", c)
		}
		call.specialist.conn.write(wire.TypeChat, wire.ChatSend{Text: "Bonjour, je regarde."})
		var chat wire.Chat
		call.customer.expect(wire.TypeChat, &chat)
		if chat.Text != "Bonjour, je regarde." || chat.Translation != nil {
			t.Errorf("chat while the translator is down %+v", chat)
		}
	})

	t.Run("the session's captions end with the call", func(t *testing.T) {
		call.specialist.conn.write(wire.TypeEnd, wire.Empty{})
		call.customer.expect(wire.TypeSessionEnded, nil)
		waitUntil(t, 10*time.Second, "no session has captions any more", func() bool {
			ts.captions.mu.Lock()
			defer ts.captions.mu.Unlock()
			return len(ts.captions.sessions) == 0
		})
	})
}

func TestCaptionsAreOffWithoutAProvider(t *testing.T) {
	ts := newTestServer(t)
	if ts.captions != nil {
		t.Fatal("captions are on without captions-stt-url")
	}
	s := ts.createSession(t)
	customer := ts.joinWithLanguage(t, linkToken(s.CustomerURL), "Ann", "en")
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.joinWithLanguage(t, linkToken(s.SpecialistURL), "Sam", "fr")
	specialist.conn.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	specialist.conn.write(wire.TypeChat, wire.ChatSend{Text: "Bonjour"})
	var chat wire.Chat
	customer.expect(wire.TypeChat, &chat)
	if chat.Text != "Bonjour" || chat.Translation != nil || chat.Language != "" {
		t.Errorf("chat %+v", chat)
	}
	if customer.await(wire.TypeCaptions, nil, 300*time.Millisecond) {
		t.Error("captions announced without a provider")
	}
}

func TestTheAudioLevelExtensionIDIsReadFromTheSDP(t *testing.T) {
	for _, c := range []struct {
		name, sdp string
		want      uint8
	}{
		{"Chrome's offer", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=extmap:1 urn:ietf:params:rtp-hdrext:toffset\r\n", 1},
		{"a direction", "m=audio 9 RTP 111\na=extmap:5/sendonly urn:ietf:params:rtp-hdrext:ssrc-audio-level\n", 5},
		{"only on video", "m=video 9 RTP 96\na=extmap:3 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n", 0},
		{"none", "m=audio 9 RTP 111\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\n", 0},
		{"a two-byte ID", "m=audio 9 RTP 111\na=extmap:200 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n", 0},
		{"garbage", "m=audio 9 RTP 111\na=extmap:\na=extmap:x \n", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := media.AudioLevelExtensionID(c.sdp); got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
		})
	}
}

func TestCaptionsTakeTheCustomersLanguageFromTheAppointment(t *testing.T) {
	stt := newFakeSTT(t, "unused")
	ts := startTestServer(t, captionsConfig(t, stt, newFakeTranslate(t, nil)))
	a := ts.bookFor(t, time.Now().Add(time.Minute), api.Customer{Name: "Ana", Email: "ana@example.com", Language: "pt-BR"})
	if a.CustomerURL == "" || a.SpecialistURL == "" {
		t.Fatalf("appointment without links: %+v", a)
	}
	// The page says English (the browser's), the booking says Portuguese: the booking wins.
	customer := ts.joinWithLanguage(t, linkToken(a.CustomerURL), "Ana", "en-US")
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.joinWithLanguage(t, linkToken(a.SpecialistURL), "Sam", "de")
	specialist.expect(wire.TypeQueue, nil)
	specialist.conn.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	var state wire.Captions
	customer.expect(wire.TypeCaptions, &state)
	if !state.Available || state.Language != "pt" || !state.Translated {
		t.Errorf("the customer's captions state %+v, want Portuguese", state)
	}
	waitUntil(t, 10*time.Second, "the specialist is told about captions", func() bool { return len(specialist.captionsStates()) > 0 })
	if state = specialist.captionsStates()[0]; state.Language != "de" {
		t.Errorf("the specialist's captions state %+v, want German", state)
	}
}

func TestJoinRefusesALanguageThatIsNotATag(t *testing.T) {
	for _, lang := range []string{"english please", "x", strings.Repeat("a", 40), "fr<script>"} {
		t.Run(lang, func(t *testing.T) {
			_, _, err := wire.Decode([]byte(`{"type":"join","payload":{"token":"t","language":` + strconv.Quote(lang) + `}}`))
			if err == nil {
				t.Errorf("join with language %q was accepted", lang)
			}
		})
	}
	if _, _, err := wire.Decode([]byte(`{"type":"join","payload":{"token":"t","language":"zh-Hant-TW"}}`)); err != nil {
		t.Errorf("zh-Hant-TW: %v", err)
	}
}
