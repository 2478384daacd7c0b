package signaling

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/problem"
)

// A POST with an Idempotency-Key header is answered once: a retry with the same key and the
// same body gets the first answer again (with Idempotent-Replayed: true), whichever node it
// reaches; the same key with a different body is refused. Keys are scoped to the caller (its
// organisation and its key or specialist) and the route, and remembered for a day.

const maxIdempotencyKey = 255

// idempotent runs h for an authenticated POST, honouring its Idempotency-Key.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, c caller, h http.HandlerFunc) {
	idemKey := r.Header.Get("Idempotency-Key")
	if r.Method != http.MethodPost || idemKey == "" {
		h(w, r)
		return
	}
	if len(idemKey) > maxIdempotencyKey || !printable(idemKey) {
		problem.Write(w, r, http.StatusBadRequest, "bad-header", "Idempotency-Key: 1 to 255 printable ASCII characters")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		problem.Write(w, r, http.StatusRequestEntityTooLarge, "too-large", "request body is too large")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	who := c.SpecialistID
	if who == "" {
		who = c.KeyName
	}
	key := digest(c.OrgID, who, r.Method, r.URL.Path, idemKey)
	prior, err := s.idempotency.Claim(r.Context(), key, digest(string(body)))
	switch {
	case errors.Is(err, rooms.ErrKeyReused):
		problem.Write(w, r, http.StatusUnprocessableEntity, "idempotency-key-reused", err.Error())
		return
	case errors.Is(err, rooms.ErrRequestInProgress):
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, http.StatusConflict, "idempotency-key-in-progress", err.Error())
		return
	case err != nil:
		s.internalError(w, r, err)
		return
	case prior != nil:
		w.Header().Set("Content-Type", prior.ContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(prior.Status)
		_, _ = w.Write(prior.Body)
		return
	}
	rec := &capturingWriter{ResponseWriter: w, status: http.StatusOK}
	h(rec, r)
	// Our own failures are not remembered: the client's retry deserves another try.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if rec.status >= 500 {
		err = s.idempotency.Release(ctx, key)
	} else {
		err = s.idempotency.Complete(ctx, key, rooms.StoredResponse{RequestHash: digest(string(body)),
			Status: rec.status, ContentType: rec.Header().Get("Content-Type"), Body: rec.body.Bytes()})
	}
	if err != nil {
		s.log.Warn("idempotency record not stored", "err", err)
	}
}

// capturingWriter passes a response through and keeps a copy.
type capturingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capturingWriter) WriteHeader(status int) {
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *capturingWriter) Write(p []byte) (int, error) {
	c.body.Write(p)
	return c.ResponseWriter.Write(p)
}

func (c *capturingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Mutable resources carry an ETag (a hash of their JSON); a GET with a matching
// If-None-Match gets 304, and a PATCH with an If-Match that no longer matches gets 412, so two
// administrators do not overwrite each other's changes unknowingly.

// errPreconditionFailed is returned when If-Match names an older version.
var errPreconditionFailed = errors.New("the resource has changed since you read it (If-Match)")

// etagOf is the entity tag of a JSON representation.
func etagOf(v any) string {
	data, _ := json.Marshal(v)
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// etagMatches says whether an If-Match or If-None-Match header names tag.
func etagMatches(header, tag string) bool {
	for candidate := range strings.SplitSeq(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == "*" || candidate == tag {
			return true
		}
	}
	return false
}

// writeJSONTagged writes v with its ETag; a GET whose If-None-Match matches gets 304.
func writeJSONTagged(w http.ResponseWriter, r *http.Request, status int, v any) {
	tag := etagOf(v)
	w.Header().Set("ETag", tag)
	if r.Method == http.MethodGet && etagMatches(r.Header.Get("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, status, v)
}
