package captions

import (
	"testing"
	"time"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/mediatest"
	"github.com/assist-video/assist/media/mediatest/roomtest"
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

// joinRoom connects a mediatest peer to the room through in-process signalling.
func joinRoom(t *testing.T, room *media.Room, id string, options ...func(*mediatest.Config)) *mediatest.Peer {
	t.Helper()
	return roomtest.Join(t, room, id, testLogger(t), options...)
}
