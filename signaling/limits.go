package signaling

import (
	"bufio"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// Limits keep one client from taking what a node has for everyone: requests per API key or
// console sign-in and per client IP (token buckets answered with 429 and Retry-After), sign-in
// attempts per IP and per email, open signaling sockets per IP and per session, and deadlines
// that let a slow phone upload a photo but do not let a silent client hold a connection.
type limits struct {
	perCaller      *buckets // API keys and console sign-ins
	perIP          *buckets // routes that take no API key, and failed credentials
	loginPerIP     *buckets
	loginPerEmail  *buckets
	ipSockets      *gauge
	sessionSockets *gauge

	// A body (upload) or a response (download) must move at least this often, and an upload
	// must average at least minBodyRate once past its first bodyIdle.
	bodyIdle      time.Duration
	minBodyRate   float64 // bytes per second
	uploadTimeout time.Duration
}

// minUploadRate is the slowest average an upload may keep: about a 2G phone's uplink.
const minUploadRate = 4 << 10

func newLimits(cfg config.Config) *limits {
	return &limits{
		perCaller:      newBuckets(rate.Limit(cfg.APIRate), cfg.APIBurst),
		perIP:          newBuckets(rate.Limit(cfg.IPRate), cfg.IPBurst),
		loginPerIP:     newBuckets(rate.Limit(float64(cfg.LoginRate)/60), cfg.LoginRate),
		loginPerEmail:  newBuckets(rate.Limit(float64(cfg.LoginRate)/60), cfg.LoginRate),
		ipSockets:      newGauge(cfg.MaxSocketsPerIP),
		sessionSockets: newGauge(cfg.MaxSocketsPerSession),
		bodyIdle:       cfg.ReadTimeout,
		minBodyRate:    minUploadRate,
		uploadTimeout:  cfg.UploadTimeout,
	}
}

// buckets is a token bucket per key. A bucket left alone until it is full again is forgotten,
// so a flood of distinct keys costs memory only for as long as it lasts.
type buckets struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	forget  time.Duration
	entries map[string]*bucket
	swept   time.Time
}

type bucket struct {
	limiter *rate.Limiter
	seen    time.Time
}

func newBuckets(limit rate.Limit, burst int) *buckets {
	forget := time.Minute
	if limit > 0 {
		forget = max(time.Duration(float64(burst)/float64(limit)*float64(time.Second)), time.Second)
	}
	return &buckets{limit: limit, burst: burst, forget: forget, entries: map[string]*bucket{}}
}

// take spends one token of key's bucket; when it is empty, it says when the next one comes.
func (b *buckets) take(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.swept) > b.forget {
		for k, e := range b.entries {
			if now.Sub(e.seen) > b.forget {
				delete(b.entries, k)
			}
		}
		b.swept = now
	}
	e := b.entries[key]
	if e == nil {
		e = &bucket{limiter: rate.NewLimiter(b.limit, b.burst)}
		b.entries[key] = e
	}
	e.seen = now
	r := e.limiter.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (b *buckets) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

// gauge counts things open per key, up to a maximum.
type gauge struct {
	mu   sync.Mutex
	max  int
	open map[string]int
}

func newGauge(limit int) *gauge { return &gauge{max: limit, open: map[string]int{}} }

func (g *gauge) acquire(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[key] >= g.max {
		return false
	}
	g.open[key]++
	return true
}

func (g *gauge) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[key]--; g.open[key] <= 0 {
		delete(g.open, key)
	}
}

func (g *gauge) count(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open[key]
}

// clientIP is the key of a request's sender: its address, or its /64 for IPv6, where one
// subscriber holds a whole prefix. Assist takes the TCP peer, not a forwarded header: behind a
// proxy, the proxy must limit.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// tooMany answers 429 with the seconds to wait.
func tooMany(w http.ResponseWriter, r *http.Request, retryAfter time.Duration, detail string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(retryAfter.Seconds())))))
	problem.Write(w, r, http.StatusTooManyRequests, "rate-limited", detail)
}

// limitIP spends one of the client IP's tokens on routes that take no API key.
func (s *Server) limitIP(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.allowIP(w, r) {
			h(w, r)
		}
	}
}

// allowIP spends one of the client IP's tokens, or answers 429.
func (s *Server) allowIP(w http.ResponseWriter, r *http.Request) bool {
	if ok, wait := s.limits.perIP.take(clientIP(r), time.Now()); !ok {
		tooMany(w, r, wait, "too many requests from your address: slow down")
		return false
	}
	return true
}

// allowCaller spends one of an authenticated caller's tokens: per API key, or per specialist
// for console tokens, whatever address they come from.
func (s *Server) allowCaller(w http.ResponseWriter, r *http.Request, c caller) bool {
	key := "specialist:" + c.OrgID + "." + c.SpecialistID
	if c.SpecialistID == "" {
		key = "key:" + c.KeyName
	}
	if ok, wait := s.limits.perCaller.take(key, time.Now()); !ok {
		tooMany(w, r, wait, "too many requests with this credential: slow down")
		return false
	}
	return true
}

// allowLogin limits sign-in attempts per client IP and per email, against password guessing.
func (s *Server) allowLogin(w http.ResponseWriter, r *http.Request, email string) bool {
	now := time.Now()
	if ok, wait := s.limits.loginPerIP.take(clientIP(r), now); !ok {
		tooMany(w, r, wait, "too many sign-in attempts from your address: wait and try again")
		return false
	}
	if ok, wait := s.limits.loginPerEmail.take(strings.ToLower(strings.TrimSpace(email)), now); !ok {
		tooMany(w, r, wait, "too many sign-in attempts for this account: wait and try again")
		return false
	}
	return true
}

// limitSockets refuses a signaling socket, before the upgrade, when its client IP already has
// max-sockets-per-ip open. The count is released when the socket's connection closes (or at
// once, if the request never became a socket).
func (s *Server) limitSockets(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r)
		if !s.limits.ipSockets.acquire(ip) {
			tooMany(w, r, 5*time.Second, "too many open sockets from your address")
			return
		}
		var once sync.Once
		release := func() { once.Do(func() { s.limits.ipSockets.release(ip) }) }
		hw := &hijackWatch{ResponseWriter: w, onClose: release}
		h(hw, r)
		if !hw.hijacked {
			release()
		}
	}
}

// hijackWatch hands the upgrader a connection that reports when it is closed.
type hijackWatch struct {
	http.ResponseWriter
	onClose  func()
	hijacked bool
}

func (w *hijackWatch) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *hijackWatch) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	return &closeWatch{Conn: conn, onClose: w.onClose}, brw, nil
}

type closeWatch struct {
	net.Conn
	onClose func()
}

func (c *closeWatch) Close() error {
	err := c.Conn.Close()
	c.onClose()
	return err
}

// claimSessionSocket counts a joined socket against its session's max-sockets-per-session;
// the participant calls release when the socket ends.
func (s *Server) claimSessionSocket(sessionID string) (release func(), werr *wire.Error) {
	if !s.limits.sessionSockets.acquire(sessionID) {
		return nil, wire.Errorf(wire.CodeRateLimited, "this session has too many open sockets")
	}
	var once sync.Once
	return func() { once.Do(func() { s.limits.sessionSockets.release(sessionID) }) }, nil
}

// slowUpload lets an upload take up to upload-timeout, as long as its body keeps arriving:
// no gap longer than read-timeout, and on average at least minUploadRate once past the first
// read-timeout. Other requests have read-timeout for their whole body.
func (s *Server) slowUpload(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rc := http.NewResponseController(w)
		end := start.Add(s.limits.uploadTimeout)
		_ = rc.SetWriteDeadline(end.Add(s.limits.bodyIdle)) // the answer comes after the body
		r.Body = &progressBody{ReadCloser: r.Body, rc: rc, l: s.limits, start: start, end: end}
		h(w, r)
	}
}

// progressBody moves the read deadline on while the body arrives.
type progressBody struct {
	io.ReadCloser
	rc         *http.ResponseController
	l          *limits
	start, end time.Time
	read       int64
}

var errTooSlow = &net.OpError{Op: "read", Err: timeoutError("upload is too slow")}

type timeoutError string

func (e timeoutError) Error() string { return string(e) }
func (e timeoutError) Timeout() bool { return true }

func (b *progressBody) Read(p []byte) (int, error) {
	now := time.Now()
	if elapsed := now.Sub(b.start); elapsed > b.l.bodyIdle && float64(b.read)/elapsed.Seconds() < b.l.minBodyRate {
		return 0, errTooSlow
	}
	_ = b.rc.SetReadDeadline(earlier(now.Add(b.l.bodyIdle), b.end))
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	return n, err
}

// slowDownload lets a download take as long as it keeps moving (no write waits longer than
// read-timeout), up to upload-timeout, instead of the server's fixed write timeout.
func (s *Server) slowDownload(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		pw := &progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), idle: s.limits.bodyIdle, end: start.Add(s.limits.uploadTimeout)}
		_ = pw.rc.SetWriteDeadline(earlier(start.Add(s.limits.bodyIdle), pw.end))
		h(pw, r)
	}
}

type progressWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time
}

func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *progressWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(earlier(time.Now().Add(w.idle), w.end))
	return w.ResponseWriter.Write(p)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
