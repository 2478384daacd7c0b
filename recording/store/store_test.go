package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/recording/store/storetest"
)

// servers are the real S3 servers every behaviour runs against: the one the
// product embeds, and MinIO as a stand-in for whatever S3 a customer runs.
var servers = []struct {
	name  string
	start func(testing.TB) store.Config
}{
	{"embedded", storetest.StartEmbedded},
	{"minio", storetest.StartMinIO},
}

// behaviours each use their own organisation, so they share one bucket.
var behaviours = []struct {
	name string
	run  func(t *testing.T, env env)
}{
	{"put then get returns the same bytes and content type", testPutGet},
	{"an empty object round-trips", testEmpty},
	{"a stream of unknown size is uploaded in parts", testStreamInParts},
	{"put replaces the object and its content type", testReplace},
	{"a missing object is ErrNotFound", testNotFound},
	{"list returns a session's objects sorted, and nothing of its neighbours", testList},
	{"delete removes an object, and deleting it again succeeds", testDelete},
	{"delete prefix removes a session and leaves its neighbours", testDeletePrefix},
	{"a presigned GET downloads the bytes under the download name", testPresignGet},
	{"a tampered presigned URL is refused", testPresignTampered},
	{"keys outside the layout are refused before reaching the server", testKeyValidation},
	{"ping answers", testPing},
}

type env struct {
	ctx   context.Context
	cfg   store.Config
	store *store.Store
	org   string
}

func TestStore(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			cfg := srv.start(t)
			ctx := t.Context()
			s, err := store.New(ctx, cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			for i, b := range behaviours {
				t.Run(b.name, func(t *testing.T) {
					b.run(t, env{ctx: ctx, cfg: cfg, store: s, org: "org" + string(rune('a'+i))})
				})
			}
		})
	}
}

func key(t *testing.T, e env, session, kind, name string) string {
	t.Helper()
	k, err := store.ObjectKey(e.org, session, kind, name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func prefix(t *testing.T, e env, session string) string {
	t.Helper()
	p, err := store.SessionPrefix(e.org, session)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// randomBytes is deterministic so a failure can be reproduced.
func randomBytes(n int, seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func readAll(t *testing.T, e env, k string) ([]byte, store.ObjectInfo) {
	t.Helper()
	rc, info, err := e.store.Get(e.ctx, k)
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", k, err)
	}
	return b, info
}

func put(t *testing.T, e env, k string, data []byte, contentType string) store.ObjectInfo {
	t.Helper()
	info, err := e.store.Put(e.ctx, k, bytes.NewReader(data), int64(len(data)), contentType)
	if err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
	return info
}

func testPutGet(t *testing.T, e env) {
	k := key(t, e, "s1", store.KindSnapshots, "frame-0001.jpg")
	data := randomBytes(300_000, 1)
	before := time.Now().Add(-time.Minute)
	info := put(t, e, k, data, "image/jpeg")
	if info.Key != k || info.Size != int64(len(data)) || info.ContentType != "image/jpeg" || info.ETag == "" {
		t.Errorf("Put returned %+v", info)
	}
	if info.LastModified.Before(before) || info.LastModified.After(time.Now().Add(time.Minute)) {
		t.Errorf("LastModified %v is not about now", info.LastModified)
	}
	got, ginfo := readAll(t, e, k)
	if !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes that differ from the %d put", len(got), len(data))
	}
	if ginfo != info {
		t.Errorf("Get info %+v, Put info %+v", ginfo, info)
	}
	st, err := e.store.Stat(e.ctx, k)
	if err != nil || st != info {
		t.Errorf("Stat = %+v, %v; want %+v", st, err, info)
	}
}

func testEmpty(t *testing.T, e env) {
	k := key(t, e, "s1", store.KindFiles, "empty.txt")
	info := put(t, e, k, nil, "text/plain")
	if info.Size != 0 {
		t.Errorf("Size = %d", info.Size)
	}
	if got, _ := readAll(t, e, k); len(got) != 0 {
		t.Errorf("Get returned %d bytes", len(got))
	}
	// An unknown-size stream that turns out empty.
	k2 := key(t, e, "s1", store.KindFiles, "empty-stream.txt")
	if _, err := e.store.Put(e.ctx, k2, strings.NewReader(""), -1, ""); err != nil {
		t.Fatalf("Put of an empty stream: %v", err)
	}
	got, info2 := readAll(t, e, k2)
	if len(got) != 0 || info2.ContentType != "application/octet-stream" {
		t.Errorf("empty stream: %d bytes, %+v", len(got), info2)
	}
}

func testStreamInParts(t *testing.T, e env) {
	// A store with 5 MiB parts (S3's minimum), so 11 MiB is three parts.
	s, err := store.New(e.ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	store.SetPartSize(s, 5<<20)
	k := key(t, e, "s1", store.KindRecordings, "call.webm")
	data := randomBytes(11<<20+123, 2)
	// A pipe hides the length, as a live recording would.
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, bytes.NewReader(data))
		pw.CloseWithError(err)
	}()
	info, err := s.Put(e.ctx, k, pr, -1, "video/webm")
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("Size = %d, want %d", info.Size, len(data))
	}
	got, _ := readAll(t, e, k)
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("Get returned %d bytes that differ from the %d streamed", len(got), len(data))
	}
}

func testReplace(t *testing.T, e env) {
	k := key(t, e, "s1", store.KindFiles, "notes")
	put(t, e, k, []byte("first version"), "text/plain")
	put(t, e, k, []byte(`{"second":true}`), "application/json")
	got, info := readAll(t, e, k)
	if string(got) != `{"second":true}` || info.ContentType != "application/json" {
		t.Errorf("after replace: %q, %+v", got, info)
	}
}

func testNotFound(t *testing.T, e env) {
	k := key(t, e, "s1", store.KindFiles, "never-put.bin")
	if _, _, err := e.store.Get(e.ctx, k); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
	if _, err := e.store.Stat(e.ctx, k); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat: %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, e env) {
	want := []string{
		key(t, e, "s1", store.KindFiles, "b.pdf"),
		key(t, e, "s1", store.KindRecordings, "a.webm"),
		key(t, e, "s1", store.KindRecordings, "b.webm"),
		key(t, e, "s1", store.KindSnapshots, "1.png"),
	}
	for i, k := range slices.Backward(want) { // put out of order
		put(t, e, k, randomBytes(10+i, uint64(i)), "")
	}
	// "s10" starts like "s1"; another organisation has the same session id.
	put(t, e, key(t, e, "s10", store.KindFiles, "x"), []byte("x"), "")
	other := env{ctx: e.ctx, store: e.store, org: e.org + "x"}
	put(t, other, key(t, other, "s1", store.KindFiles, "y"), []byte("y"), "")

	got, err := e.store.List(e.ctx, prefix(t, e, "s1"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i, o := range got {
		keys = append(keys, o.Key)
		if o.Size != int64(10+i) || o.ETag == "" || o.LastModified.IsZero() {
			t.Errorf("listed %+v", o)
		}
	}
	if !slices.Equal(keys, want) {
		t.Errorf("List = %q\nwant %q", keys, want)
	}
	empty, err := e.store.List(e.ctx, prefix(t, e, "nobody"))
	if err != nil || len(empty) != 0 {
		t.Errorf("List of an empty session = %v, %v", empty, err)
	}
}

func testDelete(t *testing.T, e env) {
	k := key(t, e, "s1", store.KindSnapshots, "gone.png")
	put(t, e, k, []byte("png"), "image/png")
	if err := e.store.Delete(e.ctx, k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := e.store.Stat(e.ctx, k); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if err := e.store.Delete(e.ctx, k); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}

func testDeletePrefix(t *testing.T, e env) {
	for i := range 25 {
		put(t, e, key(t, e, "s1", store.KindSnapshots, "f"+string(rune('a'+i))), []byte{byte(i)}, "")
	}
	keep := key(t, e, "s10", store.KindFiles, "keep")
	put(t, e, keep, []byte("keep"), "")
	if err := e.store.DeletePrefix(e.ctx, prefix(t, e, "s1")); err != nil {
		t.Fatalf("DeletePrefix: %v", err)
	}
	if left, err := e.store.List(e.ctx, prefix(t, e, "s1")); err != nil || len(left) != 0 {
		t.Errorf("after DeletePrefix, List = %v, %v", left, err)
	}
	if _, err := e.store.Stat(e.ctx, keep); err != nil {
		t.Errorf("the neighbouring session lost its object: %v", err)
	}
	if err := e.store.DeletePrefix(e.ctx, prefix(t, e, "s1")); err != nil {
		t.Errorf("DeletePrefix of an empty prefix: %v", err)
	}
}

func testPresignGet(t *testing.T, e env) {
	k := key(t, e, "s1", store.KindRecordings, "call-2026.webm")
	data := randomBytes(70_000, 3)
	put(t, e, k, data, "video/webm")
	u, err := e.store.PresignGet(e.ctx, k, time.Minute, "Réunion client.webm")
	if err != nil {
		t.Fatalf("PresignGet: %v", err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET presigned URL: %s: %s", resp.Status, got)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes that differ from the %d put", len(got), len(data))
	}
	disposition, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if err != nil || disposition != "attachment" || params["filename"] != "Réunion client.webm" {
		t.Errorf("Content-Disposition %q parses as %q %v %v", resp.Header.Get("Content-Disposition"), disposition, params, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "video/webm" {
		t.Errorf("Content-Type %q", ct)
	}

	if _, err := e.store.PresignGet(e.ctx, k, 8*24*time.Hour, ""); err == nil {
		t.Error("PresignGet accepted a TTL over 7 days")
	}
}

func testPresignTampered(t *testing.T, e env) {
	k := key(t, e, "s1", store.KindFiles, "secret.pdf")
	put(t, e, k, []byte("secret"), "application/pdf")
	other := key(t, e, "s1", store.KindFiles, "other.pdf")
	put(t, e, other, []byte("other"), "application/pdf")
	u, err := e.store.PresignGet(e.ctx, other, time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	// The signature for other.pdf must not open secret.pdf.
	u.Path = strings.Replace(u.Path, "other.pdf", "secret.pdf", 1)
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("tampered URL: %s %s, want 403", resp.Status, body)
	}
}

func testKeyValidation(t *testing.T, e env) {
	bad := []string{"", "/orgs/a", "orgs//a", "orgs/a/../b", "orgs/./a", "orgs/a/", "orgs/\xff"}
	for _, k := range bad {
		if _, err := e.store.Put(e.ctx, k, strings.NewReader("x"), 1, ""); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", k, err)
		}
		if _, err := e.store.Stat(e.ctx, k); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Stat(%q): %v, want ErrInvalidKey", k, err)
		}
	}
	for _, p := range []string{"", "orgs/a", "orgs/../", "/"} {
		if _, err := e.store.List(e.ctx, p); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("List(%q): %v, want ErrInvalidKey", p, err)
		}
		if err := e.store.DeletePrefix(e.ctx, p); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("DeletePrefix(%q): %v, want ErrInvalidKey", p, err)
		}
	}
}

func testPing(t *testing.T, e env) {
	if err := e.store.Ping(e.ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestMinIOOutage(t *testing.T) {
	m := storetest.NewMinIO(t)
	ctx := t.Context()
	s, err := store.New(ctx, m.Config())
	if err != nil {
		t.Fatal(err)
	}
	k, _ := store.ObjectKey("o", "s", store.KindFiles, "kept")
	put(t, env{ctx: ctx, store: s}, k, []byte("kept"), "")

	m.Stop()
	t.Run("ping fails at once while the server is down", func(t *testing.T) {
		pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		if err := s.Ping(pingCtx); err == nil {
			t.Error("Ping succeeded with the server down")
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Ping took %s to notice", d)
		}
	})
	m.Start()
	t.Run("objects are back once the server is", func(t *testing.T) {
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if got, _ := readAll(t, env{ctx: ctx, store: s}, k); string(got) != "kept" {
			t.Errorf("got %q", got)
		}
	})
}
