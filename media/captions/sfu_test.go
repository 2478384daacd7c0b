package captions

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/mediatest"
)

// TestCaptionsFromAnSFURoom feeds the pipeline the way the server will: a media.Room tap per
// participant, with a mediatest peer publishing real Opus through the SFU. The peer's tone
// never pauses and Pion does not send the audio-level extension, so the chunker works on
// packet sizes and cuts at the maximum length.
func TestCaptionsFromAnSFURoom(t *testing.T) {
	ctx := testContext(t)
	stt := newSTTServer(t, func(req sttRequest, n int) sttAnswer {
		return sttAnswer{status: 200, body: whisperJSON("Can you hear me?", "english")}
	})
	mt := newMTServer(t, map[string]string{"en>fr:Can you hear me?": "Vous m'entendez ?"})
	var log captionLog
	p := newTestPipeline(t, stt, mt, &log, func(c *Config) { c.Chunking.MaxLength = time.Second })

	sfu, err := media.New(media.Config{ICELoopback: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("media.New: %v", err)
	}
	t.Cleanup(func() { sfu.Close() })
	room := sfu.Room("session-1")

	// What the server does when a participant joins the call.
	for _, who := range []struct{ id, lang string }{{"customer", "en"}, {"specialist", "fr"}} {
		speaker, err := p.Join(who.id, ParticipantConfig{Language: who.lang})
		if err != nil {
			t.Fatal(err)
		}
		remove, err := room.AddTap(who.id, speaker)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(remove)
	}
	joinRoom(t, room, "customer", func(c *mediatest.Config) { c.NoVideo = true })

	waitFor(t, ctx, "a caption of the customer", func() bool { return log.count() > 0 })
	c := log.all()[0]
	if c.ParticipantID != "customer" || c.Seq != 1 || c.Text != "Can you hear me?" || c.TextFor("fr") != "Vous m'entendez ?" {
		t.Errorf("caption %+v", c)
	}
	// About a second of the peer's Opus packets, in a file the fake server could read.
	if req := stt.received()[0]; req.Packets < 40 || req.Packets > 60 || req.Language != "en" {
		t.Errorf("request %+v", req)
	}
	if st := p.Stats(); st.PacketsDropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// joinRoom connects a mediatest peer to the room through in-process signalling, as
// recording/harness_test.go does.
func joinRoom(t *testing.T, room *media.Room, id string, options ...func(*mediatest.Config)) *mediatest.Peer {
	t.Helper()
	toSFU, toClient := newQueue(), newQueue()
	t.Cleanup(toClient.stop)
	t.Cleanup(toSFU.stop)
	report := func(what string, err error) {
		if err != nil && !errors.Is(err, media.ErrClosed) && !errors.Is(err, mediatest.ErrClosed) {
			t.Logf("%s: %s: %v", id, what, err)
		}
	}
	var peer *media.Peer
	cfg := mediatest.Config{
		Name:     id,
		Loopback: true,
		Logger:   testLogger(t),
		OnDescription: func(d webrtc.SessionDescription) {
			toSFU.push(func() { report("SFU HandleDescription", peer.HandleDescription(d)) })
		},
		OnCandidate: func(c webrtc.ICECandidateInit) {
			toSFU.push(func() { report("SFU HandleCandidate", peer.HandleCandidate(c)) })
		},
	}
	for _, o := range options {
		o(&cfg)
	}
	client, err := mediatest.NewPeer(cfg)
	if err != nil {
		t.Fatalf("mediatest.NewPeer: %v", err)
	}
	t.Cleanup(client.Close)
	peer, err = room.Join(id, signaller{
		description: func(d webrtc.SessionDescription) {
			toClient.push(func() { report("client HandleDescription", client.HandleDescription(d)) })
		},
		candidate: func(c webrtc.ICECandidateInit) {
			toClient.push(func() { report("client HandleCandidate", client.HandleCandidate(c)) })
		},
	})
	if err != nil {
		t.Fatalf("Join(%q): %v", id, err)
	}
	if err := client.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return client
}

// queue delivers signalling messages in order on its own goroutine, like a WebSocket writer.
type queue struct {
	mu    sync.Mutex
	items []func()
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

func newQueue() *queue {
	q := &queue{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *queue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) run() {
	defer close(q.done)
	for {
		select {
		case <-q.quit:
			return
		case <-q.wake:
		}
		for {
			q.mu.Lock()
			if len(q.items) == 0 {
				q.mu.Unlock()
				break
			}
			f := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			f()
		}
	}
}

func (q *queue) stop() { close(q.quit); <-q.done }

type signaller struct {
	description func(webrtc.SessionDescription)
	candidate   func(webrtc.ICECandidateInit)
}

func (s signaller) SendDescription(d webrtc.SessionDescription) { s.description(d) }
func (s signaller) SendCandidate(c webrtc.ICECandidateInit)     { s.candidate(c) }
