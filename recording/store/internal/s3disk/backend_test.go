package s3disk

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
)

func open(t *testing.T, dir string) (*Backend, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	b, err := Open(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, &logs
}

func mustPut(t *testing.T, b *Backend, key, data string, meta map[string]string) {
	t.Helper()
	if _, err := b.PutObject("bkt", key, meta, strings.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatalf("PutObject(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, b *Backend, key string, rng *gofakes3.ObjectRangeRequest) (string, *gofakes3.Object) {
	t.Helper()
	obj, err := b.GetObject("bkt", key, rng)
	if err != nil {
		t.Fatalf("GetObject(%q): %v", key, err)
	}
	defer obj.Contents.Close()
	data, err := io.ReadAll(obj.Contents)
	if err != nil {
		t.Fatal(err)
	}
	return string(data), obj
}

func hasCode(err error, code gofakes3.ErrorCode) bool {
	return gofakes3.HasErrorCode(err, code)
}

func withBucket(t *testing.T) (*Backend, string) {
	t.Helper()
	dir := t.TempDir()
	b, _ := open(t, dir)
	if err := b.CreateBucket("bkt"); err != nil {
		t.Fatal(err)
	}
	return b, dir
}

func listKeys(t *testing.T, b *Backend, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (keys, prefixes []string, list *gofakes3.ObjectList) {
	t.Helper()
	list, err := b.ListBucket("bkt", prefix, page)
	if err != nil {
		t.Fatalf("ListBucket: %v", err)
	}
	for _, c := range list.Contents {
		keys = append(keys, c.Key)
	}
	for _, p := range list.CommonPrefixes {
		prefixes = append(prefixes, p.Prefix)
	}
	return keys, prefixes, list
}

func TestObjects(t *testing.T) {
	t.Run("an object keeps its content type and user metadata but not request headers", func(t *testing.T) {
		b, _ := withBucket(t)
		mustPut(t, b, "k", "data", map[string]string{
			"Content-Type": "video/webm", "X-Amz-Meta-Who": "me",
			"X-Amz-Date": "20260101T000000Z", "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
		})
		got, obj := mustGet(t, b, "k", nil)
		if got != "data" || obj.Size != 4 {
			t.Errorf("got %q size %d", got, obj.Size)
		}
		if obj.Metadata["Content-Type"] != "video/webm" || obj.Metadata["X-Amz-Meta-Who"] != "me" || obj.Metadata["Last-Modified"] == "" {
			t.Errorf("metadata %v", obj.Metadata)
		}
		if _, ok := obj.Metadata["X-Amz-Date"]; ok {
			t.Errorf("request header stored: %v", obj.Metadata)
		}
	})

	t.Run("ranges read part of the content", func(t *testing.T) {
		b, _ := withBucket(t)
		mustPut(t, b, "k", "0123456789", nil)
		for _, tt := range []struct {
			rng  gofakes3.ObjectRangeRequest
			want string
		}{
			{gofakes3.ObjectRangeRequest{Start: 2, End: 4}, "234"},
			{gofakes3.ObjectRangeRequest{Start: 7, End: gofakes3.RangeNoEnd}, "789"},
			{gofakes3.ObjectRangeRequest{End: 2, FromEnd: true}, "89"},
		} {
			if got, _ := mustGet(t, b, "k", &tt.rng); got != tt.want {
				t.Errorf("range %+v = %q, want %q", tt.rng, got, tt.want)
			}
		}
	})

	t.Run("a reader keeps the old content while the object is replaced", func(t *testing.T) {
		b, _ := withBucket(t)
		mustPut(t, b, "k", "old content", nil)
		obj, err := b.GetObject("bkt", "k", nil)
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, b, "k", "new", nil)
		old, _ := io.ReadAll(obj.Contents)
		obj.Contents.Close()
		if string(old) != "old content" {
			t.Errorf("open reader read %q", old)
		}
		if got, _ := mustGet(t, b, "k", nil); got != "new" {
			t.Errorf("after replace: %q", got)
		}
	})

	t.Run("a short body is not stored", func(t *testing.T) {
		b, dir := withBucket(t)
		_, err := b.PutObject("bkt", "k", nil, strings.NewReader("abc"), 10, nil)
		if !hasCode(err, gofakes3.ErrIncompleteBody) {
			t.Errorf("PutObject: %v, want IncompleteBody", err)
		}
		if _, err := b.HeadObject("bkt", "k"); !hasCode(err, gofakes3.ErrNoSuchKey) {
			t.Errorf("HeadObject: %v, want NoSuchKey", err)
		}
		if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
			t.Errorf("temp files left: %v", tmp)
		}
	})

	t.Run("If-None-Match * refuses to replace", func(t *testing.T) {
		b, _ := withBucket(t)
		star := "*"
		cond := &gofakes3.PutConditions{IfNoneMatch: &star}
		if _, err := b.PutObject("bkt", "k", nil, strings.NewReader("1"), 1, cond); err != nil {
			t.Fatalf("first put: %v", err)
		}
		if _, err := b.PutObject("bkt", "k", nil, strings.NewReader("2"), 1, cond); !hasCode(err, gofakes3.ErrPreconditionFailed) {
			t.Errorf("second put: %v, want PreconditionFailed", err)
		}
	})

	t.Run("a missing object or bucket is reported as such", func(t *testing.T) {
		b, _ := withBucket(t)
		if _, err := b.GetObject("bkt", "nope", nil); !hasCode(err, gofakes3.ErrNoSuchKey) {
			t.Errorf("GetObject: %v", err)
		}
		if _, err := b.GetObject("other", "k", nil); !hasCode(err, gofakes3.ErrNoSuchBucket) {
			t.Errorf("GetObject in a missing bucket: %v", err)
		}
		if _, err := b.DeleteObject("bkt", "nope"); err != nil {
			t.Errorf("DeleteObject of a missing object: %v", err)
		}
	})

	t.Run("a bucket with objects is deleted only by force", func(t *testing.T) {
		b, _ := withBucket(t)
		mustPut(t, b, "k", "x", nil)
		if err := b.DeleteBucket("bkt"); !hasCode(err, gofakes3.ErrBucketNotEmpty) {
			t.Errorf("DeleteBucket: %v", err)
		}
		if err := b.ForceDeleteBucket("bkt"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.BucketExists("bkt"); ok {
			t.Error("bucket still exists")
		}
	})
}

func TestListBucket(t *testing.T) {
	b, _ := withBucket(t)
	for _, k := range []string{"c/x", "a/2", "b", "a/1", "ab"} {
		mustPut(t, b, k, k, nil)
	}

	t.Run("lists sorted by key with a prefix", func(t *testing.T) {
		keys, _, _ := listKeys(t, b, &gofakes3.Prefix{HasPrefix: true, Prefix: "a"}, gofakes3.ListBucketPage{})
		if want := []string{"a/1", "a/2", "ab"}; !slices.Equal(keys, want) {
			t.Errorf("keys %q, want %q", keys, want)
		}
	})

	t.Run("pages follow each other", func(t *testing.T) {
		var all []string
		page := gofakes3.ListBucketPage{MaxKeys: 2}
		for range 10 {
			keys, _, list := listKeys(t, b, nil, page)
			all = append(all, keys...)
			if !list.IsTruncated {
				break
			}
			page = gofakes3.ListBucketPage{MaxKeys: 2, HasMarker: true, Marker: list.NextMarker}
		}
		if want := []string{"a/1", "a/2", "ab", "b", "c/x"}; !slices.Equal(all, want) {
			t.Errorf("paged keys %q, want %q", all, want)
		}
	})

	t.Run("a delimiter folds folders into common prefixes", func(t *testing.T) {
		keys, prefixes, _ := listKeys(t, b, &gofakes3.Prefix{HasDelimiter: true, Delimiter: "/"}, gofakes3.ListBucketPage{})
		if !slices.Equal(keys, []string{"ab", "b"}) || !slices.Equal(prefixes, []string{"a/", "c/"}) {
			t.Errorf("keys %q prefixes %q", keys, prefixes)
		}
	})
}

func TestRecovery(t *testing.T) {
	dir := t.TempDir()
	b, _ := open(t, dir)
	if err := b.CreateBucket("bkt"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "kept", "kept data", map[string]string{"Content-Type": "text/plain"})
	mustPut(t, b, "torn", "this object will be torn", nil)
	b.Close()

	// What a crash can leave: a temp file, a multipart part, and (from a
	// disk that lost its tail) an object file without its footer.
	os.WriteFile(filepath.Join(dir, "tmp", "put-123"), []byte("half an upload"), 0o600)
	os.MkdirAll(filepath.Join(dir, "uploads", "X"), 0o700)
	os.WriteFile(filepath.Join(dir, "uploads", "X", "1"), []byte("part"), 0o600)
	torn := filepath.Join(dir, "buckets", "bkt", fileName("torn"))
	os.Truncate(torn, 5)

	b2, logs := open(t, dir)
	t.Run("objects written before survive", func(t *testing.T) {
		got, obj := mustGet(t, b2, "kept", nil)
		if got != "kept data" || obj.Metadata["Content-Type"] != "text/plain" {
			t.Errorf("got %q %v", got, obj.Metadata)
		}
	})
	t.Run("a torn object file is skipped, logged and kept for inspection", func(t *testing.T) {
		keys, _, _ := listKeys(t, b2, nil, gofakes3.ListBucketPage{})
		if !slices.Equal(keys, []string{"kept"}) {
			t.Errorf("listed %q", keys)
		}
		if !strings.Contains(logs.String(), "skipping unreadable object file") {
			t.Errorf("no warning logged: %s", logs)
		}
		if _, err := os.Stat(torn); err != nil {
			t.Errorf("torn file was removed: %v", err)
		}
		if _, err := b2.GetObject("bkt", "torn", nil); err == nil {
			t.Error("GetObject of a torn object succeeded")
		}
	})
	t.Run("half-written uploads are removed", func(t *testing.T) {
		for _, d := range []string{"tmp", "uploads"} {
			if entries, _ := os.ReadDir(filepath.Join(dir, d)); len(entries) != 0 {
				t.Errorf("%s still holds %v", d, entries)
			}
		}
	})
	t.Run("a second Open of the directory is refused", func(t *testing.T) {
		if b3, err := Open(dir, slog.New(slog.DiscardHandler)); err == nil {
			b3.Close()
			t.Error("second Open succeeded")
		}
	})
}

func TestMultipart(t *testing.T) {
	b, dir := withBucket(t)
	id, err := b.CreateMultipartUpload("bkt", "big", map[string]string{"Content-Type": "video/webm"})
	if err != nil {
		t.Fatal(err)
	}
	parts := map[int]string{2: "second-", 1: "first-", 3: "third"}
	etags := map[int]string{}
	for _, n := range []int{2, 1, 3} { // out of order, as parallel uploads arrive
		etag, err := b.UploadPart("bkt", "big", id, n, int64(len(parts[n])), strings.NewReader(parts[n]))
		if err != nil {
			t.Fatalf("UploadPart %d: %v", n, err)
		}
		etags[n] = etag
	}

	t.Run("parts are listed in order", func(t *testing.T) {
		res, err := b.ListParts("bkt", "big", id, 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Parts) != 2 || res.Parts[0].PartNumber != 1 || res.Parts[1].PartNumber != 2 || !res.IsTruncated {
			t.Errorf("ListParts = %+v", res)
		}
		ups, err := b.ListMultipartUploads("bkt", nil, gofakes3.Prefix{}, 10)
		if err != nil || len(ups.Uploads) != 1 || ups.Uploads[0].UploadID != id {
			t.Errorf("ListMultipartUploads = %+v, %v", ups, err)
		}
	})
	t.Run("a wrong ETag or order is refused", func(t *testing.T) {
		bad := &gofakes3.CompleteMultipartUploadRequest{Parts: []gofakes3.CompletedPart{{PartNumber: 1, ETag: `"00"`}}}
		if _, _, err := b.CompleteMultipartUpload("bkt", "big", id, bad); !hasCode(err, gofakes3.ErrInvalidPart) {
			t.Errorf("wrong ETag: %v", err)
		}
		unordered := &gofakes3.CompleteMultipartUploadRequest{Parts: []gofakes3.CompletedPart{{PartNumber: 2, ETag: etags[2]}, {PartNumber: 1, ETag: etags[1]}}}
		if _, _, err := b.CompleteMultipartUpload("bkt", "big", id, unordered); !hasCode(err, gofakes3.ErrInvalidPartOrder) {
			t.Errorf("wrong order: %v", err)
		}
	})
	t.Run("completing joins the parts into one object", func(t *testing.T) {
		req := &gofakes3.CompleteMultipartUploadRequest{}
		for n := 1; n <= 3; n++ {
			req.Parts = append(req.Parts, gofakes3.CompletedPart{PartNumber: n, ETag: etags[n]})
		}
		_, etag, err := b.CompleteMultipartUpload("bkt", "big", id, req)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(etag, `-3"`) {
			t.Errorf("ETag %s", etag)
		}
		got, obj := mustGet(t, b, "big", nil)
		if got != "first-second-third" || obj.Metadata["Content-Type"] != "video/webm" {
			t.Errorf("object %q %v", got, obj.Metadata)
		}
		if entries, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(entries) != 0 {
			t.Errorf("parts left behind: %v", entries)
		}
		if _, _, err := b.CompleteMultipartUpload("bkt", "big", id, req); !hasCode(err, gofakes3.ErrNoSuchUpload) {
			t.Errorf("second complete: %v", err)
		}
	})
	t.Run("abort removes the parts", func(t *testing.T) {
		id, _ := b.CreateMultipartUpload("bkt", "abandoned", nil)
		if _, err := b.UploadPart("bkt", "abandoned", id, 1, 1, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		if err := b.AbortMultipartUpload("bkt", "abandoned", id); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(b.uploadDir(id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("upload dir: %v", err)
		}
		if _, err := b.UploadPart("bkt", "abandoned", id, 2, 1, strings.NewReader("x")); !hasCode(err, gofakes3.ErrNoSuchUpload) {
			t.Errorf("UploadPart after abort: %v", err)
		}
	})
}
