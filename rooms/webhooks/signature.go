package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request headers.
const (
	HeaderID        = "Assist-Webhook-Id"
	HeaderTimestamp = "Assist-Webhook-Timestamp"
	HeaderSignature = "Assist-Webhook-Signature"
)

// Signature errors.
var (
	ErrInvalidSignature = errors.New("webhooks: invalid signature")
	ErrSignatureExpired = errors.New("webhooks: signature timestamp outside the tolerance")
)

// Sign returns the hex HMAC-SHA256 of timestamp + "." + body, keyed with the secret exactly as
// shown (including its "whsec_" prefix).
func Sign(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// signatureHeader is "v1=<sig>" per secret, space-separated.
func signatureHeader(secrets []string, timestamp int64, body []byte) string {
	parts := make([]string, len(secrets))
	for i, s := range secrets {
		parts[i] = "v1=" + Sign(s, timestamp, body)
	}
	return strings.Join(parts, " ")
}

// VerifySignature checks a webhook request as a receiver should: one of the v1= signatures in
// Assist-Webhook-Signature must match the body and Assist-Webhook-Timestamp under secret, and,
// when tolerance is positive, the timestamp must be within tolerance of now (this stops a
// captured request being replayed later; receivers should also drop Assist-Webhook-Id values
// they have already processed). body must be the raw request body, not re-encoded JSON.
func VerifySignature(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	tsText := header.Get(HeaderTimestamp)
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad %s %q", ErrInvalidSignature, HeaderTimestamp, tsText)
	}
	if tolerance > 0 {
		if d := time.Since(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return ErrSignatureExpired
		}
	}
	want, _ := hex.DecodeString(Sign(secret, ts, body))
	found := false
	for _, field := range strings.FieldsFunc(header.Get(HeaderSignature), func(r rune) bool { return r == ' ' || r == ',' }) {
		v, ok := strings.CutPrefix(field, "v1=")
		if !ok {
			continue // other schemes, for later versions
		}
		found = true
		got, err := hex.DecodeString(v)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	if !found {
		return fmt.Errorf("%w: no v1 signature", ErrInvalidSignature)
	}
	return ErrInvalidSignature
}
