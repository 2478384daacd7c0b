package wire

import (
	"errors"
	"regexp"
	"time"
)

// Live captions and translation (see docs/design.md, "Live captions and translation").
const (
	// TypeCaption (server → client) is one utterance of another participant, in the reader's
	// language. The same type is kept in the session's timeline with every translation (the
	// transcript); each socket passes on the reader's own.
	TypeCaption Type = "caption"
	// TypeCaptions (server → client) says whether captions run in the session, in what
	// language the participant reads them and whether they are paused (a provider is slow
	// or down).
	TypeCaptions Type = "captions"
)

// Translation is a text in another language (ISO 639-1 code).
type Translation struct {
	Language string `json:"language"`
	Text     string `json:"text"`
}

// Caption is one utterance. Meta.From is the speaker.
//
// Kept in the timeline: Text and Language are what was said, Translations what other
// participants read. Delivered to a reader: Text is in the reader's language; when it is a
// translation, OriginalText and OriginalLanguage are what was said, and Translations is empty.
type Caption struct {
	Meta
	// Seq counts the speaker's captions from 1, in the order they were spoken.
	Seq uint64 `json:"seq"`
	// Final is true for a finished utterance (the only kind the providers give today; a
	// streaming provider would send interim captions with the same seq first).
	Final            bool          `json:"final"`
	Text             string        `json:"text"`
	Language         string        `json:"language,omitempty"`
	OriginalText     string        `json:"original_text,omitempty"`
	OriginalLanguage string        `json:"original_language,omitempty"`
	Translations     []Translation `json:"translations,omitempty"`
	StartedAt        time.Time     `json:"started_at"`
	EndedAt          time.Time     `json:"ended_at"`
}

// For is the caption as a reader of language lang sees it: its translation into lang in
// place of the text, with the original beside it; the caption as it is when lang is empty,
// the spoken language, or one it was not translated into.
func (c Caption) For(lang string) Caption {
	out := c
	out.Translations = nil
	if lang == "" || lang == c.Language {
		return out
	}
	for _, t := range c.Translations {
		if t.Language == lang {
			out.OriginalText, out.OriginalLanguage = c.Text, c.Language
			out.Text, out.Language = t.Text, t.Language
			return out
		}
	}
	return out
}

// Captions is the state of captions for one participant.
type Captions struct {
	// Available is false when the server has no speech-to-text provider.
	Available bool `json:"available"`
	// Language is what the participant speaks and reads (ISO 639-1), "" when unknown.
	Language string `json:"language,omitempty"`
	// Translated is true when captions and chat are translated into Language.
	Translated bool `json:"translated,omitempty"`
	// Paused is true while the speech-to-text provider does not answer: captions resume by
	// themselves.
	Paused bool `json:"paused,omitempty"`
}

// ChatTranslations are the translation fields of a chat message. Kept in the timeline:
// Language is the sender's and Translations holds the text in every other language read in
// the session. Delivered to a reader of another language: Translation is theirs, beside the
// original Text.
type ChatTranslations struct {
	Language     string        `json:"language,omitempty"`
	Translations []Translation `json:"translations,omitempty"`
	Translation  *Translation  `json:"translation,omitempty"`
}

// For is the chat's translation fields as a reader of lang sees them.
func (c ChatTranslations) For(lang string) ChatTranslations {
	out := ChatTranslations{Language: c.Language}
	if lang == "" || lang == c.Language {
		return out
	}
	for _, t := range c.Translations {
		if t.Language == lang {
			out.Translation = &Translation{Language: t.Language, Text: t.Text}
		}
	}
	return out
}

// languageTag is a BCP 47 tag as pages send it (navigator.language): "en", "fr-CA", "zh-Hant".
var languageTag = regexp.MustCompile(`^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$`)

// validateLanguage accepts "" (unknown) or a short BCP 47 tag.
func validateLanguage(tag string) error {
	if tag == "" {
		return nil
	}
	if len(tag) > 35 || !languageTag.MatchString(tag) {
		return errors.New("language is not a BCP 47 tag")
	}
	return nil
}
