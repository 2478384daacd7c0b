package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/assist-video/assist/recording/store"
)

func startEmbedded(t *testing.T, dir string) (*store.Embedded, *store.Store) {
	t.Helper()
	e, err := store.StartEmbedded(dir, nil)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	s, err := store.New(t.Context(), e.Config())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e, s
}

func TestEmbeddedPersistence(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	small, _ := store.ObjectKey("o", "s", store.KindSnapshots, "a.png")
	large, _ := store.ObjectKey("o", "s", store.KindRecordings, "call.webm")
	gone, _ := store.ObjectKey("o", "s", store.KindFiles, "deleted.txt")
	smallData, largeData := randomBytes(1000, 10), randomBytes(6<<20, 11)

	e, s := startEmbedded(t, dir)
	put(t, env{ctx: ctx, store: s}, small, smallData, "image/png")
	store.SetPartSize(s, 5<<20)
	if _, err := s.Put(ctx, large, io.MultiReader(bytes.NewReader(largeData)), -1, "video/webm"); err != nil {
		t.Fatalf("streamed Put: %v", err)
	}
	put(t, env{ctx: ctx, store: s}, gone, []byte("bye"), "")
	if err := s.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	t.Run("objects survive a restart with the same directory", func(t *testing.T) {
		e2, s2 := startEmbedded(t, dir)
		if e2.Config().SecretKey == e.Config().SecretKey {
			t.Error("credentials were reused across starts")
		}
		re := env{ctx: ctx, store: s2}
		for k, want := range map[string][]byte{small: smallData, large: largeData} {
			got, info := readAll(t, re, k)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes back, %d put", k, len(got), len(want))
			}
			if info.LastModified.IsZero() || info.ContentType == "" {
				t.Errorf("%s: info %+v", k, info)
			}
		}
		if _, err := s2.Stat(ctx, gone); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted object came back: %v", err)
		}
		p, _ := store.SessionPrefix("o", "s")
		if objs, err := s2.List(ctx, p); err != nil || len(objs) != 2 {
			t.Errorf("List after restart = %+v, %v", objs, err)
		}
	})
}

func TestEmbeddedDirectoryIsExclusive(t *testing.T) {
	dir := t.TempDir()
	startEmbedded(t, dir)
	if e, err := store.StartEmbedded(dir, nil); err == nil {
		e.Close(context.Background())
		t.Fatal("a second embedded store started on the same directory")
	}
}

func TestEmbeddedChecksCredentials(t *testing.T) {
	e, s := startEmbedded(t, t.TempDir())
	k, _ := store.ObjectKey("o", "s", store.KindFiles, "private.txt")
	put(t, env{ctx: t.Context(), store: s}, k, []byte("private"), "text/plain")

	t.Run("a wrong secret key is refused", func(t *testing.T) {
		cfg := e.Config()
		cfg.SecretKey = strings.ToLower(cfg.SecretKey)
		_, err := store.New(t.Context(), cfg)
		if status := minio.ToErrorResponse(errors.Unwrap(err)).StatusCode; status != http.StatusForbidden {
			t.Errorf("New with a wrong secret: %v (status %d), want 403", err, status)
		}
	})
	t.Run("an unknown access key is refused", func(t *testing.T) {
		cfg := e.Config()
		cfg.AccessKey = "someone"
		_, err := store.New(t.Context(), cfg)
		if status := minio.ToErrorResponse(errors.Unwrap(err)).StatusCode; status != http.StatusForbidden {
			t.Errorf("New with an unknown access key: %v (status %d), want 403", err, status)
		}
	})
	t.Run("an unsigned request is refused", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			req, _ := http.NewRequest(method, "http://"+e.Config().Endpoint+"/"+e.Config().Bucket+"/"+k, strings.NewReader("x"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("unsigned %s: %s, want 403", method, resp.Status)
			}
		}
		got, _ := readAll(t, env{ctx: t.Context(), store: s}, k)
		if string(got) != "private" {
			t.Errorf("object is now %q", got)
		}
	})
	t.Run("it listens on loopback only", func(t *testing.T) {
		if !strings.HasPrefix(e.Config().Endpoint, "127.0.0.1:") {
			t.Errorf("endpoint %q", e.Config().Endpoint)
		}
	})
}
