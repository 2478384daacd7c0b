package captions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a session's Pipeline.
type Config struct {
	// Transcriber turns utterances into text; required.
	Transcriber Transcriber
	// Translator translates captions and chat; nil leaves captions untranslated.
	Translator Translator
	// OnCaption receives every caption, from one goroutine, in speech order per participant.
	// It should hand the caption on (to participants' writer queues, to the timeline) and
	// return: while it runs, later captions wait.
	OnCaption func(Caption)
	// Logger is the session's logger; nil discards.
	Logger *slog.Logger
	// Concurrency is how many transcriptions run at once for the session: default 4.
	Concurrency int
	// QueueLength is how many utterances may wait for a transcription: default 16. When
	// full, the oldest waiting one is dropped and counted.
	QueueLength int
	// RequestTimeout bounds each call to a provider: default 5 s. A caption late by more than
	// that is no longer live.
	RequestTimeout time.Duration
	// Chunking tunes how speech is cut into utterances.
	Chunking ChunkConfig
	// TranscriberBreaker and TranslatorBreaker guard the providers; nil gives the pipeline
	// breakers of its own with default settings. Share one per provider across sessions.
	TranscriberBreaker, TranslatorBreaker *Breaker
}

// ParticipantConfig describes a participant joining the captions of a session.
type ParticipantConfig struct {
	// Language is the language the participant speaks and reads (a BCP 47 tag such as
	// "fr" or "fr-CA"); empty lets the provider detect what they say and leaves what they
	// read untranslated.
	Language string
	// AudioLevelExtensionID is the ID negotiated for AudioLevelURI on the participant's
	// audio, 0 if none (see Speaker.SetAudioLevelExtension).
	AudioLevelExtensionID uint8
}

// Stats counts what the pipeline did and what it lost.
type Stats struct {
	PacketsDropped   uint64 // packets lost because a chunker fell behind
	Utterances       uint64 // utterances sent for transcription
	UtterancesQueued uint64 // dropped because too many waited for a transcription
	UtterancesPaused uint64 // not sent because the transcriber's breaker was open
	TranscribeErrors uint64
	TranslateErrors  uint64
	Captions         uint64
	// TranscriberPaused and TranslatorPaused are true while a provider's breaker is open:
	// captions (or their translations) are paused, worth telling the participants.
	TranscriberPaused, TranslatorPaused bool
}

// Pipeline makes one session's captions.
type Pipeline struct {
	cfg           Config
	log           *slog.Logger
	sttBreaker    *Breaker
	mtBreaker     *Breaker
	ctx           context.Context
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	jobs          chan job
	closeOnce     sync.Once
	deliveryWake  chan struct{}
	deliveryMu    sync.Mutex
	deliveryQueue []Caption

	mu         sync.Mutex
	closed     bool
	speakers   map[string]*Speaker
	languages  map[string]string // participant → base language
	gone       []*Speaker        // left, their packets still counted
	transcript []Caption

	utterances, queued, paused, sttErrors, mtErrors, captions atomic.Uint64
}

// job is one utterance waiting for its transcription.
type job struct {
	speaker            *Speaker
	index              uint64
	ogg                []byte
	startedAt, endedAt time.Time
}

// New starts a pipeline; Close stops it.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Transcriber == nil {
		return nil, errors.New("captions: Config.Transcriber is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.QueueLength <= 0 {
		cfg.QueueLength = 16
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	cfg.Chunking.setDefaults()
	log := cfg.Logger.With("component", "captions")
	p := &Pipeline{
		cfg:          cfg,
		log:          log,
		sttBreaker:   cfg.TranscriberBreaker,
		mtBreaker:    cfg.TranslatorBreaker,
		jobs:         make(chan job, cfg.QueueLength),
		deliveryWake: make(chan struct{}, 1),
		speakers:     make(map[string]*Speaker),
		languages:    make(map[string]string),
	}
	if p.sttBreaker == nil {
		p.sttBreaker = NewBreaker("transcriber", BreakerConfig{}, log)
	}
	if p.mtBreaker == nil {
		p.mtBreaker = NewBreaker("translator", BreakerConfig{}, log)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for range cfg.Concurrency {
		p.wg.Go(p.work)
	}
	p.wg.Go(p.deliver)
	return p, nil
}

// Join starts captioning a participant and returns its Speaker, the tap to give the SFU:
//
//	speaker, err := pipeline.Join(pid, captions.ParticipantConfig{Language: "fr"})
//	remove, err := room.AddTap(pid, speaker)
//
// Joining also makes the participant a reader: captions of others are translated into its
// language.
func (p *Pipeline) Join(participantID string, pc ParticipantConfig) (*Speaker, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if _, ok := p.speakers[participantID]; ok {
		return nil, fmt.Errorf("%w: %q", ErrDuplicateParticipant, participantID)
	}
	s := newSpeaker(p, participantID, pc.AudioLevelExtensionID, p.cfg.Chunking, p.log.With("participant", participantID))
	p.speakers[participantID] = s
	p.languages[participantID] = BaseLanguage(pc.Language)
	p.wg.Go(func() { s.run(p.ctx) })
	return s, nil
}

// SetLanguage changes what a participant speaks and reads, from its next utterance on.
func (p *Pipeline) SetLanguage(participantID, language string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.speakers[participantID]; ok {
		p.languages[participantID] = BaseLanguage(language)
	}
}

// Leave stops captioning a participant: what it said last is still transcribed, and others'
// captions are no longer translated for it. Remove the participant's tap too.
func (p *Pipeline) Leave(participantID string) {
	p.mu.Lock()
	s := p.speakers[participantID]
	delete(p.speakers, participantID)
	delete(p.languages, participantID)
	if s != nil {
		p.gone = append(p.gone, s)
	}
	p.mu.Unlock()
	if s != nil {
		s.stopChunker()
	}
}

// Close stops the pipeline: requests in flight are cancelled, nothing more is delivered, and
// Close returns once every goroutine of the pipeline has ended.
func (p *Pipeline) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		speakers := make([]*Speaker, 0, len(p.speakers))
		for _, s := range p.speakers {
			speakers = append(speakers, s)
		}
		p.mu.Unlock()
		for _, s := range speakers {
			s.stopped.Store(true)
		}
		p.cancel()
		p.wg.Wait()
	})
}

// Stats reports the pipeline's counters.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	var dropped uint64
	for _, s := range p.speakers {
		dropped += s.Dropped()
	}
	for _, s := range p.gone {
		dropped += s.Dropped()
	}
	p.mu.Unlock()
	return Stats{
		PacketsDropped:   dropped,
		Utterances:       p.utterances.Load(),
		UtterancesQueued: p.queued.Load(),
		UtterancesPaused: p.paused.Load(),
		TranscribeErrors: p.sttErrors.Load(),
		TranslateErrors:  p.mtErrors.Load(),
		Captions:         p.captions.Load(),

		TranscriberPaused: p.sttBreaker.Open(),
		TranslatorPaused:  p.mtBreaker.Open(),
	}
}

// Transcript is every caption delivered so far, in delivery order.
func (p *Pipeline) Transcript() []Caption {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Caption(nil), p.transcript...)
}

// TranslateText translates a chat message (or any text) from one language to another; the
// text comes back as is when the languages are the same. from may be empty (detect).
func (p *Pipeline) TranslateText(ctx context.Context, text, from, to string) (string, error) {
	from, to = BaseLanguage(from), BaseLanguage(to)
	if to == "" || from == to || strings.TrimSpace(text) == "" {
		return text, nil
	}
	if p.cfg.Translator == nil {
		return "", ErrNoTranslator
	}
	if p.ctx.Err() != nil {
		return "", ErrClosed
	}
	if !p.mtBreaker.Allow() {
		return "", ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	out, err := p.cfg.Translator.Translate(ctx, text, from, to)
	p.mtBreaker.Record(err)
	if err != nil {
		p.mtErrors.Add(1)
		return "", err
	}
	return out, nil
}

// enqueue queues an utterance for transcription, dropping the oldest waiting one when the
// queue is full: a fresh caption is worth more than a stale one. Called by chunkers.
func (p *Pipeline) enqueue(j job) {
	if p.ctx.Err() != nil {
		return
	}
	p.utterances.Add(1)
	for {
		select {
		case p.jobs <- j:
			return
		default:
		}
		select {
		case old := <-p.jobs:
			p.queued.Add(1)
			old.speaker.log.Warn("transcriptions falling behind: utterance dropped")
			p.complete(old, nil)
		default:
		}
	}
}

// work is one of the pipeline's transcription goroutines.
func (p *Pipeline) work() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case j := <-p.jobs:
			p.complete(j, p.caption(j))
		}
	}
}

// caption transcribes and translates one utterance; nil when there is nothing to show.
func (p *Pipeline) caption(j job) *Caption {
	s := j.speaker
	p.mu.Lock()
	language := p.languages[s.id]
	p.mu.Unlock()

	if !p.sttBreaker.Allow() {
		p.paused.Add(1)
		return nil
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RequestTimeout)
	res, err := p.cfg.Transcriber.Transcribe(ctx, j.ogg, language)
	cancel()
	if p.ctx.Err() != nil {
		p.sttBreaker.Record(context.Canceled)
		return nil
	}
	p.sttBreaker.Record(err)
	if err != nil {
		p.sttErrors.Add(1)
		s.log.Debug("transcription failed", "err", err)
		return nil
	}
	text := strings.TrimSpace(res.Text)
	if blank(text) {
		return nil
	}
	if res.Language != "" {
		language = BaseLanguage(res.Language)
	}
	c := &Caption{ParticipantID: s.id, Text: text, Language: language, StartedAt: j.startedAt, EndedAt: j.endedAt}
	for _, target := range p.readersLanguages(s.id, language) {
		if p.cfg.Translator == nil || !p.mtBreaker.Allow() {
			break
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RequestTimeout)
		out, err := p.cfg.Translator.Translate(ctx, text, language, target)
		cancel()
		if p.ctx.Err() != nil {
			p.mtBreaker.Record(context.Canceled)
			return nil
		}
		p.mtBreaker.Record(err)
		if err != nil {
			p.mtErrors.Add(1)
			s.log.Debug("translation failed", "target", target, "err", err)
			continue
		}
		c.Translations = append(c.Translations, Translation{Language: target, Text: out})
	}
	return c
}

// readersLanguages lists the languages, other than lang, that other participants read.
func (p *Pipeline) readersLanguages(speaker, lang string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id, l := range p.languages {
		if id == speaker || l == "" || l == lang || containsString(out, l) {
			continue
		}
		out = append(out, l)
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// blank reports text that is no speech: Whisper marks silence and noise as "[BLANK_AUDIO]",
// "(silence)" and the like.
func blank(text string) bool {
	if text == "" {
		return true
	}
	return (strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]")) ||
		(strings.HasPrefix(text, "(") && strings.HasSuffix(text, ")"))
}

// complete records the result of a job and releases, in order, every caption of the speaker
// whose earlier utterances are all done.
func (p *Pipeline) complete(j job, c *Caption) {
	s := j.speaker
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.finished[j.index] = c
	for {
		c, ok := s.finished[s.next]
		if !ok {
			return
		}
		delete(s.finished, s.next)
		s.next++
		if c == nil {
			continue
		}
		s.seq++
		c.Seq = s.seq
		// Queued under the speaker's lock, so that its captions keep their order.
		p.deliveryMu.Lock()
		p.deliveryQueue = append(p.deliveryQueue, *c)
		p.deliveryMu.Unlock()
		select {
		case p.deliveryWake <- struct{}{}:
		default:
		}
	}
}

// deliver is the goroutine that calls OnCaption.
func (p *Pipeline) deliver() {
	var batch []Caption
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.deliveryWake:
		}
		p.deliveryMu.Lock()
		batch, p.deliveryQueue = p.deliveryQueue, batch[:0]
		p.deliveryMu.Unlock()
		for _, c := range batch {
			if p.ctx.Err() != nil {
				return
			}
			p.captions.Add(1)
			p.mu.Lock()
			p.transcript = append(p.transcript, c)
			p.mu.Unlock()
			if p.cfg.OnCaption != nil {
				p.cfg.OnCaption(c)
			}
		}
	}
}
