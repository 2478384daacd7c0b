// Package client is a typed Go client for Assist's REST API (the /v1 routes described by the
// OpenAPI document the server serves at /v1/openapi.json).
//
// It speaks the same resource types as the server (package signaling/api), authenticates with
// an API key or a console token as Authorization: Bearer, takes a context on every call, and
// turns the server's RFC 9457 problem documents into *Problem errors:
//
//	c, err := client.New("https://assist.example.com", client.WithAPIKey(key))
//	sess, err := c.CreateSession(ctx, api.CreateSession{}, client.IdempotencyKey(orderID))
//	var p *client.Problem
//	if errors.As(err, &p) && p.Status == http.StatusNotFound { ... }
//
// Lists that the API pages with cursors have a one-page method (ListSessions) and an iterator
// over every item (AllSessions) that follows next_cursor.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one Assist node (or a load balancer in front of several). It is safe for
// concurrent use.
type Client struct {
	base      string // scheme://host[/prefix], without a trailing slash
	http      *http.Client
	bearer    string
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithAPIKey authenticates every call with an organisation's API key (ak_...).
func WithAPIKey(key string) Option { return func(c *Client) { c.bearer = key } }

// WithToken authenticates every call with a console token from Login.
func WithToken(token string) Option { return func(c *Client) { c.bearer = token } }

// WithHTTPClient sends requests through hc instead of http.DefaultClient: for timeouts,
// proxies, TLS settings or test transports.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithUserAgent sets the User-Agent header, so the node's logs say who called.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the node at baseURL (for example "http://127.0.0.1:8080").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http:// or https:// and a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q: no query or fragment, please", baseURL)
	}
	c := &Client{base: u.String(), http: http.DefaultClient, userAgent: "assist-go-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL is the node the client talks to.
func (c *Client) BaseURL() string { return c.base }

// CallOption changes one call.
type CallOption func(*callOptions)

type callOptions struct {
	idempotencyKey string
	bearer         string
}

// IdempotencyKey sends an Idempotency-Key header with a creating POST, so that a retry after a
// lost reply does not create the resource twice (where the server honours it). It is ignored on
// other methods.
func IdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idempotencyKey = key }
}

// Bearer authenticates this call with token instead of the client's credentials: for uploads,
// which take a session link's token, or to act once as another specialist.
func Bearer(token string) CallOption { return func(o *callOptions) { o.bearer = token } }

// request is one API call.
type request struct {
	method string
	path   string // under the base URL, already escaped
	query  url.Values
	// in is sent as a JSON body when not nil; body and contentType send raw bytes instead.
	in          any
	body        io.Reader
	contentType string
	accept      string
	opts        []CallOption
}

// maxErrorBody bounds how much of an error reply is read.
const maxErrorBody = 64 << 10

// send performs the request and returns the response of a 2xx reply; any other status is
// returned as a *Problem, with the body closed.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	var o callOptions
	for _, opt := range r.opts {
		opt(&o)
	}
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	body, contentType := r.body, r.contentType
	if r.in != nil {
		data, err := json.Marshal(r.in)
		if err != nil {
			return nil, fmt.Errorf("client: encode %s %s: %w", r.method, r.path, err)
		}
		body, contentType = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	accept := r.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept+", application/problem+json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	bearer := c.bearer
	if o.bearer != "" {
		bearer = o.bearer
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if o.idempotencyKey != "" && r.method == http.MethodPost {
		req.Header.Set("Idempotency-Key", o.idempotencyKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, readProblem(resp)
	}
	return resp, nil
}

// call performs the request and decodes a JSON reply into out (nil: the reply is discarded).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: %s %s: decode the %d reply: %w", r.method, r.path, resp.StatusCode, err)
	}
	return nil
}

// Problem is an API error: the server's RFC 9457 problem document, or one made up from the
// status when the reply was not a problem document (a proxy's error page, say).
type Problem struct {
	Status   int    `json:"status"`
	Type     string `json:"type"`
	Title    string `json:"title"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// RetryAfter is how long the server asked to wait (Retry-After on 429 and 503), or 0.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	msg := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	return msg
}

// Kind is the last part of the problem's type URI, such as "not-found" or "invalid-state".
func (p *Problem) Kind() string {
	return p.Type[strings.LastIndex(p.Type, "/")+1:]
}

// StatusOf is the HTTP status of an API error, or 0 when err is not one (a network error).
func StatusOf(err error) int {
	var p *Problem
	if errors.As(err, &p) {
		return p.Status
	}
	return 0
}

func readProblem(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	p := &Problem{}
	ct := resp.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/problem+json") || strings.HasPrefix(ct, "application/json") {
		_ = json.Unmarshal(data, p)
	}
	if p.Status == 0 {
		p.Status = resp.StatusCode
	}
	if p.Title == "" {
		p.Title = http.StatusText(resp.StatusCode)
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		p.RetryAfter = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(resp.Header.Get("Retry-After")); err == nil {
		p.RetryAfter = max(time.Until(at), 0)
	}
	if p.Detail == "" && !strings.Contains(ct, "json") {
		const max = 200
		text := strings.TrimSpace(string(data))
		if len(text) > max {
			text = text[:max] + "…"
		}
		p.Detail = text
	}
	return p
}

// segment escapes one path segment (an id from the caller).
func segment(s string) string { return url.PathEscape(s) }
