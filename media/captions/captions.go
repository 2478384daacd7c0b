// Package captions turns what participants say into live captions, translated into the
// language of whoever reads them, and translates chat the same way.
//
// It listens to the SFU like the recorder does: a Speaker is a media tap (it has the
// media.Tap method) that copies each Opus packet into a small ring and returns. A goroutine
// per speaker cuts the audio into utterances on silence, without decoding (RFC 6464 audio
// levels when the browser sends them, Opus packet sizes when it does not), and wraps each one
// as an Ogg/Opus file. A Pipeline (one per session) sends the files to a Transcriber, the
// text to a Translator for every other participant who reads another language, and hands
// Captions to a callback in speech order.
//
// Speech-to-text and translation are providers behind two small interfaces, with adapters for
// the API shapes self-hosted servers speak: OpenAITranscriber (POST /v1/audio/transcriptions,
// as served by OpenAI, whisper.cpp's server and faster-whisper servers) and LibreTranslate
// (POST /translate). A provider that is slow or down only pauses captions: requests time
// out, a circuit breaker stops calling a dead provider for a while, and media never waits.
package captions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrClosed is returned once the pipeline is closed.
	ErrClosed = errors.New("captions: pipeline closed")
	// ErrUnavailable is returned while a provider's circuit breaker is open: it failed
	// repeatedly and is left alone until its backoff has passed.
	ErrUnavailable = errors.New("captions: provider unavailable")
	// ErrNoTranslator is returned by TranslateText when no Translator is configured.
	ErrNoTranslator = errors.New("captions: no translator configured")
	// ErrDuplicateParticipant is returned by Join for a participant already speaking.
	ErrDuplicateParticipant = errors.New("captions: participant already joined")
)

// Transcriber turns speech into text.
type Transcriber interface {
	// Transcribe reads one utterance, an Ogg/Opus file, and returns what was said. language
	// is a hint (ISO 639-1, such as "en"); empty asks the provider to detect it.
	Transcribe(ctx context.Context, oggOpus []byte, language string) (Transcription, error)
}

// Transcription is a Transcriber's answer.
type Transcription struct {
	Text string
	// Language is the language the provider heard (ISO 639-1), or "" when it did not say.
	Language string
}

// Translator translates text between two languages (ISO 639-1 codes).
type Translator interface {
	Translate(ctx context.Context, text, source, target string) (string, error)
}

// Caption is one utterance of one participant, with its translations.
type Caption struct {
	ParticipantID string `json:"participant_id"`
	// Seq counts the participant's captions from 1, in the order they were spoken.
	Seq  uint64 `json:"seq"`
	Text string `json:"text"`
	// Language is what was spoken: the provider's detection, else the speaker's setting.
	Language string `json:"language,omitempty"`
	// Translations holds the text in each language other participants read, when it differs.
	Translations []Translation `json:"translations,omitempty"`
	// StartedAt and EndedAt are when the first and last speech of the utterance arrived.
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
}

// Translation is a caption's text in another language.
type Translation struct {
	Language string `json:"language"`
	Text     string `json:"text"`
}

// TextFor is the caption as a reader of language lang should see it: its translation into
// lang if there is one, else the original text.
func (c Caption) TextFor(lang string) string {
	base := BaseLanguage(lang)
	for _, t := range c.Translations {
		if t.Language == base {
			return t.Text
		}
	}
	return c.Text
}

// ProviderError is an HTTP answer from a provider that was not a success.
type ProviderError struct {
	Provider   string // "transcriber" or "translator"
	StatusCode int
	Message    string // the provider's error message, if it gave one
}

func (e *ProviderError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("captions: %s answered %d", e.Provider, e.StatusCode)
	}
	return fmt.Sprintf("captions: %s answered %d: %s", e.Provider, e.StatusCode, e.Message)
}

// BaseLanguage reduces a language tag to its lower-case primary subtag ("en-US" → "en"), the
// form providers take and captions carry; two participants with the same base language read
// each other without translation.
func BaseLanguage(tag string) string {
	tag = strings.TrimSpace(tag)
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	return strings.ToLower(tag)
}
