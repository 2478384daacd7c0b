package captions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// maxAnswerBytes bounds what is read from a provider's answer.
const maxAnswerBytes = 1 << 20

// OpenAIConfig configures an OpenAITranscriber.
type OpenAIConfig struct {
	// BaseURL is the server's root, such as "http://whisper:8080" or
	// "https://api.openai.com"; a trailing "/v1" is accepted too. Requests go to
	// {BaseURL}/v1/audio/transcriptions.
	BaseURL string
	// APIKey, if set, is sent as "Authorization: Bearer <key>".
	APIKey string
	// Model is the form's model field; default "whisper-1" (whisper.cpp ignores it, OpenAI
	// requires it, faster-whisper servers pick the model by it).
	Model string
	// ResponseFormat is "verbose_json" (the default: the answer names the detected language)
	// or "json" (text only; for servers without verbose_json).
	ResponseFormat string
	// Client makes the requests; nil uses a client of its own. Timeouts come from the
	// request's context.
	Client *http.Client
}

// OpenAITranscriber is a Transcriber for the OpenAI audio transcription API shape: a
// multipart/form-data POST of the file with model, language and response_format fields.
// whisper.cpp's server speaks it when started with
// "--inference-path /v1/audio/transcriptions --convert" (--convert lets it read Ogg/Opus
// through ffmpeg; without it, it reads WAV only).
type OpenAITranscriber struct {
	endpoint, key, model, format string
	client                       *http.Client
}

// NewOpenAITranscriber checks cfg and builds the adapter.
func NewOpenAITranscriber(cfg OpenAIConfig) (*OpenAITranscriber, error) {
	endpoint, err := endpointURL(cfg.BaseURL, "/v1/audio/transcriptions")
	if err != nil {
		return nil, fmt.Errorf("captions: transcriber base URL: %w", err)
	}
	t := &OpenAITranscriber{endpoint: endpoint, key: cfg.APIKey, model: cfg.Model, format: cfg.ResponseFormat, client: cfg.Client}
	if t.model == "" {
		t.model = "whisper-1"
	}
	switch t.format {
	case "":
		t.format = "verbose_json"
	case "json", "verbose_json":
	default:
		return nil, fmt.Errorf("captions: transcriber response format %q: want json or verbose_json", t.format)
	}
	if t.client == nil {
		t.client = &http.Client{}
	}
	return t, nil
}

// endpointURL joins a base URL and an API path, accepting a base that already ends with the
// path's first element ("/v1").
func endpointURL(base, path string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL", base)
	}
	p := strings.TrimRight(u.Path, "/")
	if first, _, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/"); ok && strings.HasSuffix(p, "/"+first) {
		p = strings.TrimSuffix(p, "/"+first)
	}
	u.Path = p + path
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// Transcribe implements Transcriber.
func (t *OpenAITranscriber) Transcribe(ctx context.Context, oggOpus []byte, language string) (Transcription, error) {
	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	part, err := form.CreatePart(textproto.MIMEHeader{
		"Content-Disposition": {`form-data; name="file"; filename="speech.ogg"`},
		"Content-Type":        {"audio/ogg"},
	})
	if err != nil {
		return Transcription{}, err
	}
	if _, err := part.Write(oggOpus); err != nil {
		return Transcription{}, err
	}
	fields := [][2]string{{"model", t.model}, {"response_format", t.format}}
	if lang := BaseLanguage(language); lang != "" {
		fields = append(fields, [2]string{"language", lang})
	}
	for _, f := range fields {
		if err := form.WriteField(f[0], f[1]); err != nil {
			return Transcription{}, err
		}
	}
	if err := form.Close(); err != nil {
		return Transcription{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, &body)
	if err != nil {
		return Transcription{}, err
	}
	req.Header.Set("Content-Type", form.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return Transcription{}, fmt.Errorf("captions: transcribe: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return Transcription{}, fmt.Errorf("captions: transcribe: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Transcription{}, &ProviderError{Provider: "transcriber", StatusCode: resp.StatusCode, Message: errorMessage(raw)}
	}
	var answer struct {
		Text     *string `json:"text"`
		Language string  `json:"language"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return Transcription{}, fmt.Errorf("captions: transcribe: bad answer: %w", err)
	}
	if answer.Text == nil {
		return Transcription{}, errors.New("captions: transcribe: answer has no text")
	}
	return Transcription{Text: strings.TrimSpace(*answer.Text), Language: languageCode(answer.Language)}, nil
}

// errorMessage digs the message out of an error answer: OpenAI's {"error": {"message"}},
// LibreTranslate's and whisper.cpp's {"error": "..."}, or the text itself.
func errorMessage(raw []byte) string {
	var nested struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &nested) == nil && nested.Error.Message != "" {
		return nested.Error.Message
	}
	var flat struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &flat) == nil && flat.Error != "" {
		return flat.Error
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
