package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"hash"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

var creds = Credentials{AccessKey: "AKTEST", SecretKey: "secret-for-tests"}

const region = "us-east-1"

// received is what the handler behind the verifier saw.
type received struct {
	body   []byte
	err    error
	header http.Header
	length int64
}

// serve runs the verifier in front of a handler that reads the whole body.
// now shifts the verifier's clock.
func serve(t *testing.T, now time.Duration) (string, <-chan received) {
	t.Helper()
	got := make(chan received, 1)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		got <- received{body: body, err: err, header: r.Header.Clone(), length: r.ContentLength}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	v := &verifier{creds: creds, next: next, now: func() time.Time { return time.Now().Add(now) }}
	srv := httptest.NewUnstartedServer(v)
	// A panic in the server (net/http logs and recovers it) fails the test.
	srv.Config.ErrorLog = log.New(failWriter{t}, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, got
}

func newRequest(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func signed(t *testing.T, method, url string, body []byte, secret string) *http.Request {
	t.Helper()
	req := newRequest(t, method, url, body)
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req.Header.Set("X-Amz-Meta-Who", "tester")
	return signer.SignV4(*req, creds.AccessKey, secret, "", region)
}

// do sends req and returns the status and the S3 error code, if any.
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	_ = xml.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Code
}

func TestHeaderSignature(t *testing.T) {
	body := []byte("hello object")
	tests := []struct {
		name     string
		shift    time.Duration
		request  func(t *testing.T, url string) *http.Request
		wantCode string // "" means the request reaches the handler
	}{
		{"a correctly signed request passes", 0, func(t *testing.T, url string) *http.Request {
			return signed(t, http.MethodPut, url+"/bkt/a/b.txt", body, creds.SecretKey)
		}, ""},
		{"a key with spaces and unicode passes", 0, func(t *testing.T, url string) *http.Request {
			return signed(t, http.MethodGet, url+"/bkt/a%20b/%C3%A9t%C3%A9?list-type=2&prefix=a+b", nil, creds.SecretKey)
		}, ""},
		{"a wrong secret is refused", 0, func(t *testing.T, url string) *http.Request {
			return signed(t, http.MethodPut, url+"/bkt/k", body, "not-the-secret")
		}, "SignatureDoesNotMatch"},
		{"an unknown access key is refused", 0, func(t *testing.T, url string) *http.Request {
			req := newRequest(t, http.MethodGet, url+"/bkt/k", nil)
			req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
			return signer.SignV4(*req, "SOMEONE", creds.SecretKey, "", region)
		}, "InvalidAccessKeyId"},
		{"an unsigned request is refused", 0, func(t *testing.T, url string) *http.Request {
			return newRequest(t, http.MethodGet, url+"/bkt/k", nil)
		}, "AccessDenied"},
		{"a changed signed header is refused", 0, func(t *testing.T, url string) *http.Request {
			req := signed(t, http.MethodPut, url+"/bkt/k", body, creds.SecretKey)
			req.Header.Set("X-Amz-Meta-Who", "attacker")
			return req
		}, "SignatureDoesNotMatch"},
		{"a changed path is refused", 0, func(t *testing.T, url string) *http.Request {
			req := signed(t, http.MethodGet, url+"/bkt/mine", nil, creds.SecretKey)
			req.URL.Path = "/bkt/theirs"
			return req
		}, "SignatureDoesNotMatch"},
		{"a changed query is refused", 0, func(t *testing.T, url string) *http.Request {
			req := signed(t, http.MethodGet, url+"/bkt?prefix=orgs/a/", nil, creds.SecretKey)
			req.URL.RawQuery = "prefix=orgs/"
			return req
		}, "SignatureDoesNotMatch"},
		{"a request from a skewed clock is refused", time.Hour, func(t *testing.T, url string) *http.Request {
			return signed(t, http.MethodGet, url+"/bkt/k", nil, creds.SecretKey)
		}, "RequestTimeTooSkewed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, got := serve(t, tt.shift)
			status, code := do(t, tt.request(t, url))
			if tt.wantCode == "" {
				if status != http.StatusOK {
					t.Fatalf("status %d %s, want 200", status, code)
				}
				if r := <-got; r.err != nil {
					t.Errorf("handler read: %v", r.err)
				}
				return
			}
			if status != http.StatusForbidden || code != tt.wantCode {
				t.Errorf("status %d %q, want 403 %q", status, code, tt.wantCode)
			}
			select {
			case <-got:
				t.Error("the request reached the handler")
			default:
			}
		})
	}
}

func TestSignedPayload(t *testing.T) {
	t.Run("a body that differs from its signed hash fails to read", func(t *testing.T) {
		url, got := serve(t, 0)
		req := signed(t, http.MethodPut, url+"/bkt/k", []byte("the signed body"), creds.SecretKey)
		req.Body = io.NopCloser(strings.NewReader("a swapped body!"))
		status, _ := do(t, req)
		if r := <-got; !errors.Is(r.err, ErrPayload) || status == http.StatusOK {
			t.Errorf("status %d, handler read err %v; want ErrPayload", status, r.err)
		}
	})
}

func TestPresigned(t *testing.T) {
	presign := func(t *testing.T, url string, expires time.Duration) *http.Request {
		req := newRequest(t, http.MethodGet, url+"/bkt/orgs/o/file.webm?response-content-disposition=attachment", nil)
		return signer.PreSignV4(*req, creds.AccessKey, creds.SecretKey, "", region, int64(expires.Seconds()))
	}
	tests := []struct {
		name     string
		shift    time.Duration
		request  func(t *testing.T, url string) *http.Request
		wantCode string
	}{
		{"a presigned URL passes", 0, func(t *testing.T, url string) *http.Request {
			return presign(t, url, time.Hour)
		}, ""},
		{"an expired presigned URL is refused", 2 * time.Hour, func(t *testing.T, url string) *http.Request {
			return presign(t, url, time.Hour)
		}, "AccessDenied"},
		{"a presigned URL for another key is refused", 0, func(t *testing.T, url string) *http.Request {
			req := presign(t, url, time.Hour)
			req.URL.Path = "/bkt/orgs/other/file.webm"
			return req
		}, "SignatureDoesNotMatch"},
		{"a presigned URL with a longer expiry is refused", 0, func(t *testing.T, url string) *http.Request {
			req := presign(t, url, time.Hour)
			q := req.URL.Query()
			q.Set("X-Amz-Expires", "86400")
			req.URL.RawQuery = q.Encode()
			return req
		}, "SignatureDoesNotMatch"},
		{"a presigned URL signed with another secret is refused", 0, func(t *testing.T, url string) *http.Request {
			req := newRequest(t, http.MethodGet, url+"/bkt/k", nil)
			return signer.PreSignV4(*req, creds.AccessKey, "other", "", region, 60)
		}, "SignatureDoesNotMatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := serve(t, tt.shift)
			status, code := do(t, tt.request(t, url))
			if tt.wantCode == "" && status != http.StatusOK {
				t.Errorf("status %d %s, want 200", status, code)
			}
			if tt.wantCode != "" && (status != http.StatusForbidden || code != tt.wantCode) {
				t.Errorf("status %d %q, want 403 %q", status, code, tt.wantCode)
			}
		})
	}
}

// sha256Hasher is the hasher minio-go's streaming signer wants.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

func streaming(t *testing.T, url string, data []byte) *http.Request {
	t.Helper()
	req := newRequest(t, http.MethodPut, url+"/bkt/k?partNumber=1&uploadId=x", data)
	req.Header.Set("Content-Type", "video/webm")
	return signer.StreamingSignV4(req, creds.AccessKey, creds.SecretKey, "", region, int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
}

func TestStreamingPayload(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 200_000/16) // about three 64 KiB chunks

	t.Run("an aws-chunked body reaches the handler decoded", func(t *testing.T) {
		url, got := serve(t, 0)
		if status, code := do(t, streaming(t, url, data)); status != http.StatusOK {
			t.Fatalf("status %d %s", status, code)
		}
		r := <-got
		if r.err != nil || !bytes.Equal(r.body, data) {
			t.Fatalf("handler read %d bytes, err %v; want the %d sent", len(r.body), r.err, len(data))
		}
		if r.length != int64(len(data)) || r.header.Get("Content-Length") != "200000" {
			t.Errorf("length %d, Content-Length %q", r.length, r.header.Get("Content-Length"))
		}
		if r.header.Get("X-Amz-Content-Sha256") != unsignedPayload || r.header.Get("Content-Encoding") != "" || r.header.Get("X-Amz-Decoded-Content-Length") != "" {
			t.Errorf("headers not rewritten: %v", r.header)
		}
	})

	t.Run("an empty streamed body is an empty object", func(t *testing.T) {
		url, got := serve(t, 0)
		if status, code := do(t, streaming(t, url, nil)); status != http.StatusOK {
			t.Fatalf("status %d %s", status, code)
		}
		if r := <-got; r.err != nil || len(r.body) != 0 {
			t.Errorf("handler read %q, %v", r.body, r.err)
		}
	})

	t.Run("a changed byte in a chunk fails the read", func(t *testing.T) {
		url, got := serve(t, 0)
		req := streaming(t, url, data)
		req.Body = io.NopCloser(&flipByte{r: req.Body, at: 70_000})
		do(t, req)
		r := <-got
		if !errors.Is(r.err, ErrPayload) {
			t.Errorf("handler read err %v, want ErrPayload", r.err)
		}
		if len(r.body) > 65536 {
			t.Errorf("handler got %d bytes, more than the chunks before the changed one", len(r.body))
		}
	})

	t.Run("other streaming payload modes are refused, not stored encoded", func(t *testing.T) {
		url, got := serve(t, 0)
		req := newRequest(t, http.MethodPut, url+"/bkt/k", data)
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		req = signer.SignV4(*req, creds.AccessKey, creds.SecretKey, "", region)
		if status, code := do(t, req); status != http.StatusNotImplemented || code != "NotImplemented" {
			t.Errorf("status %d %q, want 501 NotImplemented", status, code)
		}
		select {
		case <-got:
			t.Error("the request reached the handler")
		default:
		}
	})
}

// flipByte changes one byte of a stream.
type flipByte struct {
	r   io.Reader
	at  int
	pos int
}

func (f *flipByte) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.pos && f.at < f.pos+n {
		p[f.at-f.pos] ^= 0xff
	}
	f.pos += n
	return n, err
}

type failWriter struct{ t *testing.T }

func (w failWriter) Write(p []byte) (int, error) {
	w.t.Errorf("server: %s", p)
	return len(p), nil
}
