// Package s3disk is the gofakes3 backend behind the embedded object store: it
// keeps every object in one file under a directory, so recordings survive a
// restart and a crash.
//
// gofakes3's own backends do not fit: s3bolt holds each object as one BoltDB
// value (whole recordings in memory, a database file that never shrinks);
// s3afero truncates the live file before writing the new one, and an object
// whose metadata file is missing (a crash between the two writes) makes every
// listing of the bucket fail. gofakes3 also keeps multipart parts in memory
// unless the backend stores them, so this backend stores them on disk too.
//
// Layout under the root directory:
//
//	lock                          flock: one process per directory
//	buckets/{bucket}/{sha256(key)} one object file per object (see file.go)
//	tmp/                          objects being written; emptied by Open
//	uploads/{id}/{part}           multipart parts; emptied by Open
//
// Files are named by the hash of the key, so no key, however odd, is a path.
package s3disk

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// Backend is a gofakes3.Backend and gofakes3.MultipartBackend on disk.
//
// The mutex orders commits (rename into place plus index update) and guards
// the in-memory index, which exists only to answer listings without reading
// every file. Reads open object files without it: a rename is atomic, so a
// reader gets a whole object, old or new.
type Backend struct {
	root   string
	logger *slog.Logger
	unlock func() error

	mu      sync.RWMutex
	buckets map[string]*bucket
	uploads map[gofakes3.UploadID]*upload
}

type bucket struct {
	created time.Time
	objects map[string]entry // by key
}

// entry is what a listing needs to know about an object.
type entry struct {
	size     int64
	md5      []byte
	modified time.Time
}

var (
	_ gofakes3.Backend          = (*Backend)(nil)
	_ gofakes3.MultipartBackend = (*Backend)(nil)
)

// Open takes the directory for this process, removes what an earlier process
// left half-written, and indexes the objects on disk. Object files that cannot
// be read are logged and left alone, never deleted.
func Open(root string, logger *slog.Logger) (*Backend, error) {
	if err := os.MkdirAll(filepath.Join(root, "buckets"), 0o700); err != nil {
		return nil, fmt.Errorf("s3disk: %w", err)
	}
	unlock, err := lockDir(root)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		root:    root,
		logger:  logger,
		unlock:  unlock,
		buckets: map[string]*bucket{},
		uploads: map[gofakes3.UploadID]*upload{},
	}
	if err := b.load(); err != nil {
		_ = unlock()
		return nil, err
	}
	return b, nil
}

// Close releases the directory. Readers still open keep working.
func (b *Backend) Close() error {
	return b.unlock()
}

func (b *Backend) load() error {
	for _, dir := range []string{b.tmpDir(), b.uploadsDir()} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("s3disk: cleaning %s: %w", dir, err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("s3disk: %w", err)
		}
	}
	dirs, err := os.ReadDir(filepath.Join(b.root, "buckets"))
	if err != nil {
		return fmt.Errorf("s3disk: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || gofakes3.ValidateBucketName(d.Name()) != nil {
			b.logger.Warn("object store: ignoring unexpected entry", "path", filepath.Join(b.root, "buckets", d.Name()))
			continue
		}
		bk, err := b.loadBucket(d.Name())
		if err != nil {
			return err
		}
		b.buckets[d.Name()] = bk
	}
	return nil
}

func (b *Backend) loadBucket(name string) (*bucket, error) {
	dir := b.bucketDir(name)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("s3disk: %w", err)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("s3disk: %w", err)
	}
	bk := &bucket{created: st.ModTime(), objects: make(map[string]entry, len(files))}
	for _, f := range files {
		path := filepath.Join(dir, f.Name())
		m, size, err := readObjectFile(path)
		if err == nil && fileName(m.Key) != f.Name() {
			err = errors.New("file name does not match its key")
		}
		if err != nil {
			b.logger.Warn("object store: skipping unreadable object file", "path", path, "err", err)
			continue
		}
		bk.objects[m.Key] = entry{size: size, md5: m.MD5, modified: m.Modified}
	}
	return bk, nil
}

func readObjectFile(path string) (objectMeta, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return objectMeta{}, 0, err
	}
	defer f.Close()
	return readFooter(f)
}

func (b *Backend) tmpDir() string               { return filepath.Join(b.root, "tmp") }
func (b *Backend) uploadsDir() string           { return filepath.Join(b.root, "uploads") }
func (b *Backend) bucketDir(name string) string { return filepath.Join(b.root, "buckets", name) }

func (b *Backend) objectPath(bucketName, key string) string {
	return filepath.Join(b.bucketDir(bucketName), fileName(key))
}

func fileName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (b *Backend) ListBuckets() ([]gofakes3.BucketInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	infos := make([]gofakes3.BucketInfo, 0, len(b.buckets))
	for _, name := range slices.Sorted(maps.Keys(b.buckets)) {
		infos = append(infos, gofakes3.BucketInfo{Name: name, CreationDate: gofakes3.NewContentTime(b.buckets[name].created)})
	}
	return infos, nil
}

func (b *Backend) BucketExists(name string) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.buckets[name] != nil, nil
}

func (b *Backend) CreateBucket(name string) error {
	if err := gofakes3.ValidateBucketName(name); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buckets[name] != nil {
		return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
	}
	if err := os.MkdirAll(b.bucketDir(name), 0o700); err != nil {
		return err
	}
	if err := syncDir(filepath.Join(b.root, "buckets")); err != nil {
		return err
	}
	b.buckets[name] = &bucket{created: time.Now(), objects: map[string]entry{}}
	return nil
}

func (b *Backend) DeleteBucket(name string) error {
	return b.deleteBucket(name, false)
}

func (b *Backend) ForceDeleteBucket(name string) error {
	return b.deleteBucket(name, true)
}

func (b *Backend) deleteBucket(name string, force bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.buckets[name]
	if bk == nil {
		return gofakes3.BucketNotFound(name)
	}
	if !force && len(bk.objects) > 0 {
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
	}
	if err := os.RemoveAll(b.bucketDir(name)); err != nil {
		return err
	}
	delete(b.buckets, name)
	for id, up := range b.uploads {
		if up.bucket == name {
			delete(b.uploads, id)
			_ = os.RemoveAll(b.uploadDir(id))
		}
	}
	return nil
}

// ListBucket lists from the index, sorted by key, one page at a time.
func (b *Backend) ListBucket(name string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	type item struct {
		key string
		entry
	}
	b.mu.RLock()
	bk := b.buckets[name]
	if bk == nil {
		b.mu.RUnlock()
		return nil, gofakes3.BucketNotFound(name)
	}
	var items []item
	for key, e := range bk.objects {
		if (prefix.HasPrefix && !strings.HasPrefix(key, prefix.Prefix)) || (page.HasMarker && key <= page.Marker) {
			continue
		}
		items = append(items, item{key, e})
	}
	b.mu.RUnlock()
	slices.SortFunc(items, func(x, y item) int { return strings.Compare(x.key, y.key) })

	list := gofakes3.NewObjectList()
	var count int64
	var last string // the last key or common prefix put on this page
	for _, it := range items {
		var match gofakes3.PrefixMatch
		if !prefix.Match(it.key, &match) {
			continue
		}
		if match.CommonPrefix && (match.MatchedPart == last || (page.HasMarker && match.MatchedPart <= page.Marker)) {
			continue
		}
		if page.MaxKeys > 0 && count == page.MaxKeys {
			list.IsTruncated = true
			list.NextMarker = last
			break
		}
		if match.CommonPrefix {
			list.AddPrefix(match.MatchedPart)
			last = match.MatchedPart
		} else {
			list.Add(&gofakes3.Content{
				Key:          it.key,
				LastModified: gofakes3.NewContentTime(it.modified),
				ETag:         gofakes3.FormatETag(it.md5),
				Size:         it.size,
			})
			last = it.key
		}
		count++
	}
	return list, nil
}

// open opens an object file and reads its footer. The caller closes f.
func (b *Backend) open(bucketName, key string) (f *os.File, m objectMeta, size int64, err error) {
	if ok, _ := b.BucketExists(bucketName); !ok {
		return nil, m, 0, gofakes3.BucketNotFound(bucketName)
	}
	f, err = os.Open(b.objectPath(bucketName, key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, m, 0, gofakes3.KeyNotFound(key)
	}
	if err != nil {
		return nil, m, 0, err
	}
	m, size, err = readFooter(f)
	if err == nil && m.Key != key {
		err = gofakes3.KeyNotFound(key)
	}
	if err != nil {
		f.Close()
		return nil, m, 0, err
	}
	return f, m, size, nil
}

func (b *Backend) GetObject(bucketName, key string, rangeRequest *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	f, m, size, err := b.open(bucketName, key)
	if err != nil {
		return nil, err
	}
	rng, err := rangeRequest.Range(size)
	if err != nil {
		f.Close()
		return nil, err
	}
	content := io.NewSectionReader(f, 0, size)
	if rng != nil {
		content = io.NewSectionReader(f, rng.Start, rng.Length)
	}
	return &gofakes3.Object{
		Name:     key,
		Metadata: m.responseHeaders(),
		Size:     size,
		Contents: readCloser{content, f},
		Hash:     m.MD5,
		Range:    rng,
	}, nil
}

func (b *Backend) HeadObject(bucketName, key string) (*gofakes3.Object, error) {
	f, m, size, err := b.open(bucketName, key)
	if err != nil {
		return nil, err
	}
	f.Close()
	return &gofakes3.Object{
		Name:     key,
		Metadata: m.responseHeaders(),
		Size:     size,
		Contents: io.NopCloser(strings.NewReader("")),
		Hash:     m.MD5,
	}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// responseHeaders are the stored headers plus Last-Modified, which gofakes3
// sends from the metadata map.
func (m objectMeta) responseHeaders() map[string]string {
	h := maps.Clone(m.Headers)
	if h == nil {
		h = map[string]string{}
	}
	h["Last-Modified"] = m.Modified.Format(http.TimeFormat)
	return h
}

// storedHeaders keeps the request headers that describe the object. gofakes3
// hands over every X-Amz-* request header (dates, signatures' payload hashes);
// S3 keeps only these.
func storedHeaders(meta map[string]string) map[string]string {
	kept := map[string]string{}
	for k, v := range meta {
		switch ck := http.CanonicalHeaderKey(k); {
		case ck == "Content-Type", ck == "Content-Disposition", ck == "Content-Encoding",
			ck == "Content-Language", ck == "Cache-Control", strings.HasPrefix(ck, "X-Amz-Meta-"):
			kept[ck] = v
		}
	}
	return kept
}

// PutObject streams the body into a temp file, then commits it. gofakes3's
// MergeMetadata (carrying old metadata over) is deliberately not used: in S3
// a PUT replaces the object's metadata.
func (b *Backend) PutObject(bucketName, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if ok, _ := b.BucketExists(bucketName); !ok {
		return gofakes3.PutObjectResult{}, gofakes3.BucketNotFound(bucketName)
	}
	tmp, err := os.CreateTemp(b.tmpDir(), "put-*")
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	defer discard(tmp)
	sum := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), input)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	if size >= 0 && n != size {
		return gofakes3.PutObjectResult{}, gofakes3.ErrIncompleteBody
	}
	return gofakes3.PutObjectResult{}, b.commit(tmp, bucketName, key, storedHeaders(meta), sum.Sum(nil), n, conditions)
}

// discard removes a temp file that was not committed; after a commit the name
// is gone and this does nothing.
func discard(tmp *os.File) {
	_ = tmp.Close()
	_ = os.Remove(tmp.Name())
}

// commit appends the footer to tmp (which holds size bytes of content), makes
// it durable and renames it over the object's file.
func (b *Backend) commit(tmp *os.File, bucketName, key string, headers map[string]string, md5sum []byte, size int64, conditions *gofakes3.PutConditions) error {
	m := objectMeta{Key: key, MD5: md5sum, Modified: time.Now().UTC(), Headers: headers}
	if err := writeFooter(tmp, m); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}

	b.mu.Lock()
	bk := b.buckets[bucketName]
	if bk == nil {
		b.mu.Unlock()
		return gofakes3.BucketNotFound(bucketName)
	}
	if conditions != nil {
		current := &gofakes3.ConditionalObjectInfo{}
		if e, ok := bk.objects[key]; ok {
			current.Exists, current.Hash = true, e.md5
		}
		if err := gofakes3.CheckPutConditions(conditions, current); err != nil {
			b.mu.Unlock()
			return err
		}
	}
	if err := os.Rename(tmp.Name(), b.objectPath(bucketName, key)); err != nil {
		b.mu.Unlock()
		return err
	}
	bk.objects[key] = entry{size: size, md5: md5sum, modified: m.Modified}
	b.mu.Unlock()

	return syncDir(b.bucketDir(bucketName))
}

func (b *Backend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
}

// DeleteObject removes the object; a missing object is not an error, as in S3.
func (b *Backend) DeleteObject(bucketName, key string) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	bk := b.buckets[bucketName]
	if bk == nil {
		b.mu.Unlock()
		return gofakes3.ObjectDeleteResult{}, gofakes3.BucketNotFound(bucketName)
	}
	err := os.Remove(b.objectPath(bucketName, key))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		b.mu.Unlock()
		return gofakes3.ObjectDeleteResult{}, err
	}
	delete(bk.objects, key)
	b.mu.Unlock()
	return gofakes3.ObjectDeleteResult{}, syncDir(b.bucketDir(bucketName))
}

func (b *Backend) DeleteMulti(bucketName string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	var result gofakes3.MultiDeleteResult
	for _, key := range keys {
		if _, err := b.DeleteObject(bucketName, key); err != nil {
			res := gofakes3.ErrorResultFromError(err)
			res.Key = key
			result.Error = append(result.Error, res)
			b.logger.Error("object store: delete failed", "bucket", bucketName, "key", key, "err", err)
			continue
		}
		result.Deleted = append(result.Deleted, gofakes3.ObjectID{Key: key})
	}
	return result, nil
}
