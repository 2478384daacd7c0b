package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/captions"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/wire"
)

// Live captions and translation (media/captions wired into the call).
//
// Each node that carries participants of a call runs one captions.Pipeline for the session:
// every participant in the call on this node joins it (a reader of its language, and a
// speaker through a tap on its published audio). Final captions go into the session's
// timeline with all their translations (the transcript, visible in GET /v1/sessions/{id});
// every socket of the session, on any node, passes each one on to its participant in the
// participant's language, with the original beside a translation, and not to the speaker.
// Chat is translated the same way by the session's chat worker, in order, before it is kept.
// A slow or dead provider pauses captions (its breaker opens; participants are told) and
// leaves chat untranslated; media never waits for either.

const (
	// captionsPublishTimeout bounds keeping one caption or chat message in the timeline.
	captionsPublishTimeout = 2 * time.Second
	// captionsPollInterval is how often a session checks whether its captions are paused.
	captionsPollInterval = 500 * time.Millisecond
	chatQueueLength      = 32
)

// captionService holds the providers, shared by all sessions of the node, and the sessions
// with captions on this node.
type captionService struct {
	log         *slog.Logger
	rooms       *rooms.Store
	sfu         *media.SFU
	transcriber captions.Transcriber
	translator  captions.Translator // nil without translate-url
	sttBreaker  *captions.Breaker
	mtBreaker   *captions.Breaker
	// requestTimeout, in nanoseconds, bounds each provider call (0: the pipeline's default);
	// tests shorten it.
	requestTimeout atomic.Int64
	// chunking, when set, tunes how speech is cut (tests of fake microphones that beep).
	chunking atomic.Pointer[captions.ChunkConfig]
	publish  func(ctx context.Context, orgID, sessionID string, typ wire.Type, msg any, kept bool) *wire.Error

	mu       sync.Mutex
	closed   bool
	sessions map[string]*sessionCaptions // by org/session
}

// sessionCaptions is one session's pipeline on this node and who is in it.
type sessionCaptions struct {
	svc              *captionService
	orgID, sessionID string
	key              string
	log              *slog.Logger
	pipeline         *captions.Pipeline
	ctx              context.Context
	cancel           context.CancelFunc
	done             chan struct{}

	// Guarded by svc.mu.
	members  map[string]*captionMember // by participant ID
	speakers map[string]wire.Sender    // everyone who spoke, also after leaving

	chatMu     sync.Mutex
	chatClosed bool
	chats      chan wire.Chat
}

// captionMember is a participant of the session's captions: the socket that holds it
// (a newer socket of the same participant takes over) and its tap on the SFU.
type captionMember struct {
	conn      string
	language  string
	speaker   *captions.Speaker
	removeTap func()
}

// openCaptions sets up captions when a speech-to-text provider is configured.
func (s *Server) openCaptions() error {
	if s.cfg.CaptionsSTTURL == "" {
		return nil
	}
	log := s.log.With("component", "captions")
	client := &http.Client{} // each request's context bounds it
	stt, err := captions.NewOpenAITranscriber(captions.OpenAIConfig{BaseURL: s.cfg.CaptionsSTTURL,
		APIKey: s.cfg.CaptionsSTTKey, Model: s.cfg.CaptionsSTTModel, Client: client})
	if err != nil {
		return err
	}
	svc := &captionService{
		log: log, rooms: s.rooms, sfu: s.sfu, transcriber: stt, publish: s.publishTool,
		sttBreaker: captions.NewBreaker("transcriber", captions.BreakerConfig{}, log),
		mtBreaker:  captions.NewBreaker("translator", captions.BreakerConfig{}, log),
		sessions:   make(map[string]*sessionCaptions),
	}
	if s.cfg.TranslateURL != "" {
		mt, err := captions.NewLibreTranslate(captions.LibreTranslateConfig{BaseURL: s.cfg.TranslateURL,
			APIKey: s.cfg.TranslateKey, Client: client})
		if err != nil {
			return err
		}
		svc.translator = mt
	}
	s.captions = svc
	return nil
}

// close ends every session's captions; it runs at shutdown, after the sockets.
func (c *captionService) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.closed = true
	sessions := c.sessions
	c.sessions = map[string]*sessionCaptions{}
	for _, sc := range sessions {
		for _, m := range sc.members {
			m.removeTap()
		}
	}
	c.mu.Unlock()
	for _, sc := range sessions {
		sc.close()
	}
}

// join adds a participant in the call to its session's captions, once per socket.
func (c *captionService) join(p *participant) {
	key := p.orgID + "/" + p.sessionID
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	sc := c.sessions[key]
	if sc != nil {
		if m := sc.members[p.id]; m != nil && m.conn == p.connID {
			c.mu.Unlock()
			return // already in
		}
	} else {
		var err error
		if sc, err = c.openSession(p.orgID, p.sessionID, key); err != nil {
			c.mu.Unlock()
			p.log.Warn("captions", "err", err)
			return
		}
		c.sessions[key] = sc
	}
	if old := sc.members[p.id]; old != nil { // the participant's previous socket
		old.removeTap()
		sc.pipeline.Leave(p.id)
		delete(sc.members, p.id)
	}
	speaker, err := sc.pipeline.Join(p.id, captions.ParticipantConfig{Language: p.language})
	if err != nil {
		c.mu.Unlock()
		p.log.Warn("captions join", "err", err)
		return
	}
	remove, err := c.sfu.Room(p.sessionID).AddTap(p.id, speaker)
	if err != nil {
		sc.pipeline.Leave(p.id)
		c.mu.Unlock()
		p.log.Warn("captions tap", "err", err)
		return
	}
	sc.members[p.id] = &captionMember{conn: p.connID, language: p.language, speaker: speaker, removeTap: remove}
	sc.speakers[p.id] = wire.Sender{ParticipantID: p.id, Role: string(p.role), Name: p.name}
	paused := c.sttBreaker.Open()
	c.mu.Unlock()
	p.send(wire.TypeCaptions, wire.Captions{Available: true, Language: p.language,
		Translated: c.translator != nil && p.language != "", Paused: paused})
}

// openSession starts a session's pipeline; c.mu is held.
func (c *captionService) openSession(orgID, sessionID, key string) (*sessionCaptions, error) {
	sc := &sessionCaptions{svc: c, orgID: orgID, sessionID: sessionID, key: key,
		log:     c.log.With("session", sessionID),
		members: make(map[string]*captionMember), speakers: make(map[string]wire.Sender),
		chats: make(chan wire.Chat, chatQueueLength), done: make(chan struct{})}
	cfg := captions.Config{
		Transcriber: c.transcriber, Translator: c.translator, Logger: sc.log,
		TranscriberBreaker: c.sttBreaker, TranslatorBreaker: c.mtBreaker,
		RequestTimeout: time.Duration(c.requestTimeout.Load()),
		OnCaption:      sc.publishCaption,
	}
	if ch := c.chunking.Load(); ch != nil {
		cfg.Chunking = *ch
	}
	p, err := captions.New(cfg)
	if err != nil {
		return nil, err
	}
	sc.pipeline = p
	sc.ctx, sc.cancel = context.WithCancel(context.Background())
	go sc.run()
	return sc, nil
}

// leave takes a participant's socket out of its session's captions; the session's pipeline
// closes when nobody on this node is left in it.
func (c *captionService) leave(p *participant) {
	key := p.orgID + "/" + p.sessionID
	c.mu.Lock()
	sc := c.sessions[key]
	if sc == nil {
		c.mu.Unlock()
		return
	}
	m := sc.members[p.id]
	if m == nil || m.conn != p.connID {
		c.mu.Unlock()
		return // not in, or taken over by a newer socket
	}
	m.removeTap()
	sc.pipeline.Leave(p.id)
	delete(sc.members, p.id)
	last := len(sc.members) == 0
	if last {
		delete(c.sessions, key)
	}
	c.mu.Unlock()
	if last {
		sc.close()
	}
}

// setAudioLevel gives the participant's speaker the audio-level extension ID of its SDP.
func (c *captionService) setAudioLevel(p *participant, sdp string) {
	id := media.AudioLevelExtensionID(sdp)
	if id == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc := c.sessions[p.orgID+"/"+p.sessionID]; sc != nil {
		if m := sc.members[p.id]; m != nil && m.conn == p.connID {
			m.speaker.SetAudioLevelExtension(id)
		}
	}
}

// queueChat hands a chat message to its session's chat worker, to be translated into the
// languages read in the session and then kept; false when it should be kept as it is.
func (c *captionService) queueChat(p *participant, chat wire.Chat) bool {
	if c.translator == nil {
		return false
	}
	c.mu.Lock()
	sc := c.sessions[p.orgID+"/"+p.sessionID]
	c.mu.Unlock()
	if sc == nil {
		return false
	}
	chat.Language = p.language
	sc.chatMu.Lock()
	defer sc.chatMu.Unlock()
	if sc.chatClosed {
		return false
	}
	select {
	case sc.chats <- chat: // buffered: never blocks
		return true
	default:
		return false // the translator is far behind: this one goes untranslated
	}
}

// close stops the session's goroutines: chat already queued is kept untranslated.
func (sc *sessionCaptions) close() {
	sc.chatMu.Lock()
	sc.chatClosed = true
	sc.chatMu.Unlock()
	sc.cancel()
	<-sc.done
	sc.pipeline.Close()
}

// run is the session's goroutine: it translates chat in order and tells participants when
// captions pause and resume.
func (sc *sessionCaptions) run() {
	defer close(sc.done)
	poll := time.NewTicker(captionsPollInterval)
	defer poll.Stop()
	paused := false
	for {
		select {
		case <-sc.ctx.Done():
			for {
				select {
				case chat := <-sc.chats:
					sc.keepChat(chat)
				default:
					return
				}
			}
		case chat := <-sc.chats:
			sc.translateChat(&chat)
			sc.keepChat(chat)
		case <-poll.C:
			if now := sc.pipeline.Stats().TranscriberPaused; now != paused {
				paused = now
				sc.log.Info("captions", "paused", paused)
				ctx, cancel := context.WithTimeout(context.Background(), captionsPublishTimeout)
				sc.svc.publish(ctx, sc.orgID, sc.sessionID, wire.TypeCaptions, wire.Captions{Available: true, Paused: paused}, false)
				cancel()
			}
		}
	}
}

// translateChat adds the chat's translations into every other language read in the session;
// those the translator cannot give now are left out.
func (sc *sessionCaptions) translateChat(chat *wire.Chat) {
	sc.svc.mu.Lock()
	var targets []string
	for id, m := range sc.members {
		if id != chat.From.ParticipantID && m.language != "" && m.language != chat.Language {
			targets = append(targets, m.language)
		}
	}
	sc.svc.mu.Unlock()
	seen := map[string]bool{}
	for _, to := range targets {
		if seen[to] {
			continue
		}
		seen[to] = true
		out, err := sc.pipeline.TranslateText(sc.ctx, chat.Text, chat.Language, to)
		if err != nil {
			if !errors.Is(err, captions.ErrUnavailable) {
				sc.log.Info("chat not translated", "target", to, "err", err)
			}
			continue
		}
		chat.Translations = append(chat.Translations, wire.Translation{Language: to, Text: out})
	}
}

func (sc *sessionCaptions) keepChat(chat wire.Chat) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if werr := sc.svc.publish(ctx, sc.orgID, sc.sessionID, wire.TypeChat, chat, true); werr != nil {
		sc.log.Warn("chat lost", "err", werr)
	}
}

// publishCaption keeps a final caption in the timeline, from the pipeline's delivery
// goroutine; every socket of the session relays it.
func (sc *sessionCaptions) publishCaption(c captions.Caption) {
	sc.svc.mu.Lock()
	from, ok := sc.speakers[c.ParticipantID]
	sc.svc.mu.Unlock()
	if !ok {
		from = wire.Sender{ParticipantID: c.ParticipantID}
	}
	msg := wire.Caption{Meta: wire.Meta{ID: newMessageID(), Time: time.Now().UTC(), From: from},
		Seq: c.Seq, Final: true, Text: c.Text, Language: c.Language,
		StartedAt: c.StartedAt.UTC(), EndedAt: c.EndedAt.UTC()}
	for _, t := range c.Translations {
		msg.Translations = append(msg.Translations, wire.Translation{Language: t.Language, Text: t.Text})
	}
	ctx, cancel := context.WithTimeout(context.Background(), captionsPublishTimeout)
	defer cancel()
	if werr := sc.svc.publish(ctx, sc.orgID, sc.sessionID, wire.TypeCaption, msg, true); werr != nil {
		sc.log.Warn("caption lost", "err", werr)
	}
}

// Hooks on the participant's socket (socket.go, tools.go).

// setCaptionLanguage records what the participant speaks and reads: a customer's appointment
// says it first, then what the page sent in join.
func (p *participant) setCaptionLanguage(ctx context.Context, asked string, sess *rooms.Session) {
	if p.srv.captions == nil {
		return
	}
	lang := asked
	if p.role == rooms.RoleCustomer && sess != nil && sess.AppointmentID != "" {
		if a, err := p.srv.rooms.Appointment(ctx, p.orgID, sess.AppointmentID); err == nil && a.Customer.Language != "" {
			lang = a.Customer.Language
		}
	}
	p.language = captions.BaseLanguage(lang)
}

// joinCaptions runs whenever the participant is seen in the call.
func (p *participant) joinCaptions() {
	if p.srv.captions != nil {
		p.srv.captions.join(p)
	}
}

// leaveCaptions runs when the socket ends.
func (p *participant) leaveCaptions() {
	if p.srv.captions != nil && p.joined {
		p.srv.captions.leave(p)
	}
}

// noteDescription reads the audio-level extension ID from the participant's SDP.
func (p *participant) noteDescription(sdp string) {
	if p.srv.captions != nil {
		p.srv.captions.setAudioLevel(p, sdp)
	}
}

// chatTranslated queues a chat message for translation; false: keep it as it is now.
func (p *participant) chatTranslated(chat wire.Chat) bool {
	return p.srv.captions != nil && p.srv.captions.queueChat(p, chat)
}

// forReader turns captions, chat translations and the captions state into what this
// participant reads.
func (p *participant) forReader(env wire.Envelope) wire.Envelope {
	switch env.Type {
	case wire.TypeCaption:
		var c wire.Caption
		if json.Unmarshal(env.Payload, &c) == nil {
			env.Payload, _ = json.Marshal(c.For(p.language))
		}
	case wire.TypeChat:
		var c wire.Chat
		if json.Unmarshal(env.Payload, &c) == nil && (c.Language != "" || len(c.Translations) > 0) {
			c.ChatTranslations = c.ChatTranslations.For(p.language)
			env.Payload, _ = json.Marshal(c)
		}
	case wire.TypeCaptions:
		var c wire.Captions
		if json.Unmarshal(env.Payload, &c) == nil {
			c.Language = p.language
			c.Translated = p.srv.captions != nil && p.srv.captions.translator != nil && p.language != ""
			env.Payload, _ = json.Marshal(c)
		}
	}
	return env
}
