package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/assist-video/assist/signaling/api"
)

// client calls the node's REST API with an API key.
type client struct {
	base   string // e.g. http://127.0.0.1:8080, no trailing slash
	apiKey string
	http   *http.Client
}

func newClient(base, apiKey string) *client {
	return &client{base: strings.TrimRight(base, "/"), apiKey: apiKey, http: &http.Client{Timeout: 10 * time.Second}}
}

func (c *client) do(ctx context.Context, method, path string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(nil))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(body))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

func (c *client) createSession(ctx context.Context) (api.Session, error) {
	var s api.Session
	err := c.do(ctx, "POST", "/v1/sessions", http.StatusCreated, &s)
	return s, err
}

// newLinks mints fresh links for a session. A customer link identifies one person (the same
// link rejoins the same participant), so every customer needs its own; minting revokes the
// older links for new joins only, so customers join one after another, each on a fresh link.
func (c *client) newLinks(ctx context.Context, sessionID string) (api.Links, error) {
	var l api.Links
	err := c.do(ctx, "POST", "/v1/sessions/"+sessionID+"/links", http.StatusCreated, &l)
	return l, err
}

func (c *client) session(ctx context.Context, id string) (api.Session, error) {
	var s api.Session
	err := c.do(ctx, "GET", "/v1/sessions/"+id, http.StatusOK, &s)
	return s, err
}

func (c *client) endSession(ctx context.Context, id string) error {
	return c.do(ctx, "POST", "/v1/sessions/"+id+"/end", http.StatusOK, nil)
}

// linkToken is the JWT at the end of a session link. Only the token is used: the link's host
// is the node's public URL, which need not be the URL this tool was told to load.
func linkToken(link string) string { return link[strings.LastIndex(link, "/")+1:] }
