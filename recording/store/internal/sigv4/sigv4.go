// Package sigv4 lets only requests signed with one key pair through to the
// embedded S3 server. gofakes3 checks no credentials at all, and without this
// any local process could read every recording from the loopback port.
//
// It checks AWS Signature Version 4 as S3 defines it: the Authorization header
// (including streaming uploads, whose aws-chunked bodies it verifies chunk by
// chunk and decodes, because gofakes3 does not decode them for multipart
// parts) and presigned URLs. It does not implement Signature Version 2 or
// session tokens; minio-go never uses them against this server.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	timeFormat      = "20060102T150405Z"
	dateFormat      = "20060102"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	streamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"

	// maxSkew is how far a signed request's clock may be from ours, as in S3.
	maxSkew = 15 * time.Minute
	// maxExpires is the longest a presigned URL may live, as in S3.
	maxExpires = 7 * 24 * time.Hour
)

// Credentials is the one key pair the server accepts.
type Credentials struct {
	AccessKey string
	SecretKey string
}

// Handler returns next behind a signature check: unsigned or badly signed
// requests get an S3 XML error and never reach next.
func Handler(creds Credentials, next http.Handler) http.Handler {
	return &verifier{creds: creds, next: next, now: time.Now}
}

type verifier struct {
	creds Credentials
	next  http.Handler
	now   func() time.Time
}

// authError is an S3 error response: the code is what S3 clients switch on.
type authError struct {
	status  int
	code    string
	message string
}

func (e *authError) Error() string { return e.code + ": " + e.message }

func denied(code, format string, args ...any) *authError {
	return &authError{status: http.StatusForbidden, code: code, message: fmt.Sprintf(format, args...)}
}

func (v *verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var err error
	next := r
	switch {
	case r.Header.Get("Authorization") != "":
		next, err = v.checkHeader(r)
	case r.URL.Query().Has("X-Amz-Algorithm"):
		err = v.checkPresigned(r)
	default:
		err = denied("AccessDenied", "request is not signed")
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	v.next.ServeHTTP(w, next)
}

// checkHeader verifies Authorization-header signing and returns the request
// to pass on: a copy whose body verifies the payload against what was signed.
// r itself is never changed: net/http decides from it (its ContentLength, its
// Body) how to drain what the handler left unread.
func (v *verifier) checkHeader(r *http.Request) (*http.Request, error) {
	scheme, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if scheme != algorithm {
		return nil, denied("AccessDenied", "unsupported authorization scheme %q", scheme)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = val
	}
	signedAt, err := time.Parse(timeFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return nil, denied("AccessDenied", "missing or bad X-Amz-Date")
	}
	if d := v.now().Sub(signedAt); d > maxSkew || d < -maxSkew {
		return nil, denied("RequestTimeTooSkewed", "request time differs from server time by %s", d.Round(time.Second))
	}
	scope, err := v.checkCredential(fields["Credential"], signedAt)
	if err != nil {
		return nil, err
	}
	signedHeaders := strings.Split(fields["SignedHeaders"], ";")
	for _, must := range []string{"host", "x-amz-date", "x-amz-content-sha256"} {
		if !slices.Contains(signedHeaders, must) {
			return nil, denied("AccessDenied", "header %s must be signed", must)
		}
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	key := signingKey(v.creds.SecretKey, scope)
	want := signature(key, stringToSign(signedAt, scope, canonicalRequest(r, r.URL.Query(), signedHeaders, payload)))
	if !equalSignatures(want, fields["Signature"]) {
		return nil, denied("SignatureDoesNotMatch", "the request signature does not match")
	}

	switch {
	case payload == unsignedPayload:
		return r, nil
	case payload == streamingSigned:
		return decodeChunked(r, key, signedAt, scope, want)
	case strings.HasPrefix(payload, "STREAMING-"):
		return nil, &authError{status: http.StatusNotImplemented, code: "NotImplemented", message: "payload signing " + payload + " is not supported"}
	default:
		sum, err := hex.DecodeString(payload)
		if err != nil || len(sum) != sha256.Size {
			return nil, &authError{status: http.StatusBadRequest, code: "InvalidArgument", message: "bad X-Amz-Content-Sha256"}
		}
		next := r.WithContext(r.Context())
		next.Body = &sha256Body{body: r.Body, hash: sha256.New(), want: sum}
		return next, nil
	}
}

// checkPresigned verifies a presigned URL (signature in the query string).
func (v *verifier) checkPresigned(r *http.Request) error {
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != algorithm {
		return denied("AccessDenied", "unsupported X-Amz-Algorithm")
	}
	signedAt, err := time.Parse(timeFormat, q.Get("X-Amz-Date"))
	if err != nil {
		return denied("AccessDenied", "missing or bad X-Amz-Date")
	}
	expires, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || expires < 1 || time.Duration(expires)*time.Second > maxExpires {
		return denied("AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and %d seconds", int(maxExpires.Seconds()))
	}
	now := v.now()
	if signedAt.Sub(now) > maxSkew {
		return denied("AccessDenied", "request is signed in the future")
	}
	if now.After(signedAt.Add(time.Duration(expires) * time.Second)) {
		return denied("AccessDenied", "request has expired")
	}
	scope, err := v.checkCredential(q.Get("X-Amz-Credential"), signedAt)
	if err != nil {
		return err
	}
	signedHeaders := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	if !slices.Contains(signedHeaders, "host") {
		return denied("AccessDenied", "header host must be signed")
	}
	payload := q.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = unsignedPayload
	}
	got := q.Get("X-Amz-Signature")
	q.Del("X-Amz-Signature")
	key := signingKey(v.creds.SecretKey, scope)
	want := signature(key, stringToSign(signedAt, scope, canonicalRequest(r, q, signedHeaders, payload)))
	if !equalSignatures(want, got) {
		return denied("SignatureDoesNotMatch", "the request signature does not match")
	}
	return nil
}

// credentialScope is the part of a credential after the access key:
// date/region/service/aws4_request.
type credentialScope struct {
	date, region string
}

func (s credentialScope) String() string {
	return s.date + "/" + s.region + "/s3/aws4_request"
}

func (v *verifier) checkCredential(credential string, signedAt time.Time) (credentialScope, error) {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[3] != "s3" || parts[4] != "aws4_request" {
		return credentialScope{}, denied("AuthorizationHeaderMalformed", "bad credential %q", credential)
	}
	if subtle.ConstantTimeCompare([]byte(parts[0]), []byte(v.creds.AccessKey)) != 1 {
		return credentialScope{}, denied("InvalidAccessKeyId", "unknown access key")
	}
	if parts[1] != signedAt.Format(dateFormat) {
		return credentialScope{}, denied("AuthorizationHeaderMalformed", "credential date does not match X-Amz-Date")
	}
	return credentialScope{date: parts[1], region: parts[2]}, nil
}

// canonicalRequest builds the SigV4 canonical request from what the server
// received, using only the headers the client said it signed.
func canonicalRequest(r *http.Request, query url.Values, signedHeaders []string, payload string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(s3utils.EncodePath(r.URL.Path))
	b.WriteByte('\n')
	b.WriteString(strings.ReplaceAll(query.Encode(), "+", "%20"))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

// headerValue is a header's canonical value. net/http moves Host and
// (sometimes) Content-Length out of r.Header, so they are read back from r.
func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		return strconv.FormatInt(r.ContentLength, 10)
	}
	values := r.Header.Values(name)
	trimmed := make([]string, len(values))
	for i, v := range values {
		trimmed[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(trimmed, ",")
}

func stringToSign(signedAt time.Time, scope credentialScope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return algorithm + "\n" + signedAt.Format(timeFormat) + "\n" + scope.String() + "\n" + hex.EncodeToString(sum[:])
}

func signingKey(secret string, scope credentialScope) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), scope.date)
	k = hmacSHA256(k, scope.region)
	k = hmacSHA256(k, "s3")
	return hmacSHA256(k, "aws4_request")
}

func signature(key []byte, toSign string) string {
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func equalSignatures(want, got string) bool {
	return hmac.Equal([]byte(want), []byte(strings.ToLower(got)))
}

// writeError answers in S3's XML error format so that minio-go reports the
// code (SignatureDoesNotMatch, AccessDenied, ...) to its caller.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *authError
	if !errors.As(err, &ae) {
		ae = &authError{status: http.StatusInternalServerError, code: "InternalError", message: err.Error()}
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(ae.status)
	if r.Method == http.MethodHead {
		return
	}
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName  xml.Name `xml:"Error"`
		Code     string
		Message  string
		Resource string
	}{Code: ae.code, Message: ae.message, Resource: r.URL.Path})
}
