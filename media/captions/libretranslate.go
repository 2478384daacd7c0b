package captions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// LibreTranslateConfig configures a LibreTranslate adapter.
type LibreTranslateConfig struct {
	// BaseURL is the server's root, such as "http://libretranslate:5000"; requests go to
	// {BaseURL}/translate.
	BaseURL string
	// APIKey, if set, is sent as the body's api_key (servers started with --api-keys need it).
	APIKey string
	// Client makes the requests; nil uses a client of its own. Timeouts come from the
	// request's context.
	Client *http.Client
}

// LibreTranslate is a Translator for LibreTranslate's API shape: POST /translate with a JSON
// body {q, source, target, format, api_key}, answered by {translatedText} or {error}.
type LibreTranslate struct {
	endpoint, key string
	client        *http.Client
}

// NewLibreTranslate checks cfg and builds the adapter.
func NewLibreTranslate(cfg LibreTranslateConfig) (*LibreTranslate, error) {
	endpoint, err := endpointURL(cfg.BaseURL, "/translate")
	if err != nil {
		return nil, fmt.Errorf("captions: translator base URL: %w", err)
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{}
	}
	return &LibreTranslate{endpoint: endpoint, key: cfg.APIKey, client: client}, nil
}

type libreRequest struct {
	Q      string `json:"q"`
	Source string `json:"source"`
	Target string `json:"target"`
	Format string `json:"format"`
	APIKey string `json:"api_key,omitempty"`
}

// Translate implements Translator. An empty source asks the server to detect it ("auto").
func (l *LibreTranslate) Translate(ctx context.Context, text, source, target string) (string, error) {
	src := BaseLanguage(source)
	if src == "" {
		src = "auto"
	}
	body, err := json.Marshal(libreRequest{Q: text, Source: src, Target: BaseLanguage(target), Format: "text", APIKey: l.key})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("captions: translate: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return "", fmt.Errorf("captions: translate: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &ProviderError{Provider: "translator", StatusCode: resp.StatusCode, Message: errorMessage(raw)}
	}
	var answer struct {
		TranslatedText *string `json:"translatedText"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return "", fmt.Errorf("captions: translate: bad answer: %w", err)
	}
	if answer.TranslatedText == nil {
		return "", fmt.Errorf("captions: translate: answer has no translatedText")
	}
	return *answer.TranslatedText, nil
}
