package turnserver

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST scheme and browsers use.
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Credentials are one session's TURN username and password in the "REST API for TURN"
// shared-secret scheme (draft-uberti-behave-turn-rest): the username says until when and for
// which session it is valid, and the password is an HMAC of the username, so the server checks
// it without storing anything. They go to the browser as an RTCIceServer's username and
// credential.
type Credentials struct {
	Username string
	Password string
	Expires  time.Time
}

// IssueCredentials makes credentials for sessionID that expire ttl after now:
// Username = "<unix expiry>:<sessionID>", Password = base64(HMAC-SHA1(secret, Username)).
// The expiry is whole seconds, rounded down. A server with the same secret accepts them until
// they expire, and only while the session is live (Config.SessionActive).
func IssueCredentials(secret []byte, sessionID string, ttl time.Duration, now time.Time) Credentials {
	expires := now.Add(ttl).Truncate(time.Second)
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + sessionID
	return Credentials{
		Username: username,
		Password: password(secret, username),
		Expires:  time.Unix(expires.Unix(), 0),
	}
}

func password(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username)) // a hash.Hash never returns an error
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Reasons a TURN username is refused before its password is even checked. The auth handler
// logs them; the client only ever sees 401 Unauthorized.
var (
	ErrMalformedUsername = errors.New("turnserver: malformed username")
	ErrExpired           = errors.New("turnserver: credential expired")
	ErrSessionNotLive    = errors.New("turnserver: session is not live")
	ErrWrongRealm        = errors.New("turnserver: wrong realm")
)

// parseUsername splits "<unix expiry>:<session id>". The session id is everything after the
// first colon, so ids may themselves contain colons.
func parseUsername(username string) (expires time.Time, sessionID string, err error) {
	ts, sessionID, ok := strings.Cut(username, ":")
	if !ok || sessionID == "" {
		return time.Time{}, "", fmt.Errorf("%w: want <unix expiry>:<session id>", ErrMalformedUsername)
	}
	// Digits only: ParseInt alone would accept "+123" and "-1".
	if ts == "" || strings.TrimLeft(ts, "0123456789") != "" {
		return time.Time{}, "", fmt.Errorf("%w: expiry %q is not a unix time", ErrMalformedUsername, ts)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: expiry %q: %w", ErrMalformedUsername, ts, err)
	}
	return time.Unix(sec, 0), sessionID, nil
}
