// Package store keeps recordings, snapshots and shared files in S3-compatible
// object storage, always through minio-go: against MinIO or any S3 endpoint
// when one is configured, and otherwise against the embedded server that
// StartEmbedded runs in-process.
//
// Keys follow one layout, built only by SessionPrefix and ObjectKey:
// orgs/{org}/sessions/{session}/{recordings|snapshots|files}/{name}.
package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// ErrNotFound is returned when the object does not exist.
var ErrNotFound = errors.New("store: object not found")

// Config says where the bucket is. Endpoint is host:port, without a scheme.
type Config struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string
	UseTLS    bool
}

// ObjectInfo describes a stored object. ETag is the server's, without quotes;
// for objects uploaded in parts it is not the MD5 of the content.
type ObjectInfo struct {
	Key          string
	Size         int64
	ContentType  string
	ETag         string
	LastModified time.Time
}

// Store is a minio-go client bound to one bucket. It is safe for concurrent use.
type Store struct {
	client *minio.Client
	// pinger is client without retries: a health check must report an
	// unreachable endpoint now, not after minio-go's ten backed-off attempts.
	pinger *minio.Client
	bucket string
	// partSize is the buffer for uploads of unknown size: minio-go would
	// otherwise pick ~512 MiB parts (5 TiB / 10000) and allocate one such
	// buffer per upload. 16 MiB parts allow objects of up to 160 GiB.
	partSize uint64
	// regions, when set, sends each organisation's objects to its region's store (Route).
	regions *regionTable
}

const (
	defaultPartSize    = 16 << 20
	defaultContentType = "application/octet-stream"
	maxPresignTTL      = 7 * 24 * time.Hour // S3's limit
)

// New connects to the endpoint and creates the bucket if it is missing.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("store: endpoint must not be empty")
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("store: bucket %q: %w", cfg.Bucket, err)
	}
	opts := minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseTLS,
		Region: cfg.Region,
	}
	client, err := minio.New(cfg.Endpoint, &opts)
	if err != nil {
		return nil, fmt.Errorf("store: endpoint %q: %w", cfg.Endpoint, err)
	}
	opts.MaxRetries = 1
	pinger, err := minio.New(cfg.Endpoint, &opts)
	if err != nil {
		return nil, fmt.Errorf("store: endpoint %q: %w", cfg.Endpoint, err)
	}
	s := &Store{client: client, pinger: pinger, bucket: cfg.Bucket, partSize: defaultPartSize}
	if err := s.ensureBucket(ctx, cfg.Region); err != nil {
		return nil, err
	}
	return s, nil
}

// ensureBucket creates the bucket unless it exists. Several nodes may start
// at once, so losing the race to create it is success.
func (s *Store) ensureBucket(ctx context.Context, region string) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("store: checking bucket %q: %w", s.bucket, err)
	}
	if exists {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		exists, err = s.client.BucketExists(ctx, s.bucket)
		if err == nil && !exists {
			err = errors.New("it exists but is not ours")
		}
	}
	if err != nil {
		return fmt.Errorf("store: creating bucket %q: %w", s.bucket, err)
	}
	return nil
}

// Put uploads r as the object key, replacing any object there. size -1 means
// unknown: the body is streamed in parts of partSize, never held whole.
// An empty contentType is stored as application/octet-stream. The returned
// info is the server's view of the object after the upload.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if t, err := s.target(ctx, key); t != s {
		if err != nil {
			return ObjectInfo{}, err
		}
		return t.Put(ctx, key, r, size, contentType)
	}
	if contentType == "" {
		contentType = defaultContentType
	}
	opts := minio.PutObjectOptions{ContentType: contentType}
	if size < 0 {
		size, opts.PartSize = -1, s.partSize
		// minio-go sends an empty stream as one empty part, which gofakes3
		// refuses; sent as an empty object it works everywhere.
		br := bufio.NewReader(r)
		if _, err := br.Peek(1); err == io.EOF {
			size = 0
		}
		r = br
	}
	if _, err := s.client.PutObject(ctx, s.bucket, key, r, size, opts); err != nil {
		return ObjectInfo{}, wrap("put", key, err)
	}
	// The upload's answer lacks the modification time (S3 sends none on PUT).
	return s.Stat(ctx, key)
}

// Get opens the object for reading. The caller closes the reader; ctx governs
// the whole read, not only the call.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	if t, err := s.target(ctx, key); t != s {
		if err != nil {
			return nil, ObjectInfo{}, err
		}
		return t.Get(ctx, key)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, wrap("get", key, err)
	}
	// GetObject is lazy: Stat sends the request and reports a missing key.
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, ObjectInfo{}, wrap("get", key, err)
	}
	return obj, objectInfo(st), nil
}

// Stat returns the object's info without its content.
func (s *Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if t, err := s.target(ctx, key); t != s {
		if err != nil {
			return ObjectInfo{}, err
		}
		return t.Stat(ctx, key)
	}
	st, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, wrap("stat", key, err)
	}
	return objectInfo(st), nil
}

// Delete removes the object. Deleting a missing object succeeds, as in S3.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if t, err := s.target(ctx, key); t != s {
		if err != nil {
			return err
		}
		return t.Delete(ctx, key)
	}
	return wrap("delete", key, s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}))
}

// DeletePrefix removes every object under prefix, which must end with '/'
// (see SessionPrefix). Objects added while it runs may survive it.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	if t, err := s.target(ctx, prefix); t != s {
		if err != nil {
			return err
		}
		return t.DeletePrefix(ctx, prefix)
	}
	objs, err := s.List(ctx, prefix)
	if err != nil || len(objs) == 0 {
		return err
	}
	// RemoveObjects reads keys from a channel and deletes in batches of 1000.
	keys := make(chan minio.ObjectInfo, len(objs))
	for _, o := range objs {
		keys <- minio.ObjectInfo{Key: o.Key}
	}
	close(keys)
	var errs []error
	for e := range s.client.RemoveObjects(ctx, s.bucket, keys, minio.RemoveObjectsOptions{}) {
		errs = append(errs, wrap("delete", e.ObjectName, e.Err))
	}
	return errors.Join(errs...)
}

// List returns every object under prefix, which must end with '/', sorted by
// key. ContentType is empty: S3 listings do not carry it (Stat does).
func (s *Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	if t, err := s.target(ctx, prefix); t != s {
		if err != nil {
			return nil, err
		}
		return t.List(ctx, prefix)
	}
	// Cancelling on return stops minio-go's listing goroutine if we stop early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []ObjectInfo
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, wrap("list", prefix, o.Err)
		}
		out = append(out, objectInfo(o))
	}
	return out, nil
}

// PresignGet returns a URL that lets anyone holding it download the object
// for ttl (at most 7 days), without credentials. A non-empty downloadName
// makes browsers save the object under that name instead of showing it.
// The URL points at the configured endpoint: for the embedded store that is
// a loopback address, reachable only from this machine.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration, downloadName string) (*url.URL, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if t, err := s.target(ctx, key); t != s {
		if err != nil {
			return nil, err
		}
		return t.PresignGet(ctx, key, ttl, downloadName)
	}
	if ttl < time.Second || ttl > maxPresignTTL {
		return nil, fmt.Errorf("store: presign ttl %s must be between 1s and %s", ttl, maxPresignTTL)
	}
	params := url.Values{}
	if downloadName != "" {
		disposition := mime.FormatMediaType("attachment", map[string]string{"filename": downloadName})
		if disposition == "" {
			return nil, fmt.Errorf("store: download name %q cannot be sent in a header", downloadName)
		}
		params.Set("response-content-disposition", disposition)
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, key, ttl, params)
	if err != nil {
		return nil, wrap("presign", key, err)
	}
	return u, nil
}

// Ping checks that the bucket exists and the endpoint answers, for /healthz.
// It tries once: bound it with ctx all the same.
func (s *Store) Ping(ctx context.Context) error {
	exists, err := s.pinger.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if !exists {
		return fmt.Errorf("store: ping: bucket %q does not exist", s.bucket)
	}
	return nil
}

func objectInfo(o minio.ObjectInfo) ObjectInfo {
	return ObjectInfo{Key: o.Key, Size: o.Size, ContentType: o.ContentType, ETag: o.ETag, LastModified: o.LastModified}
}

// wrap names the operation and key, and turns S3's missing-key answers into
// ErrNotFound.
func wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NotFound":
		err = ErrNotFound
	}
	return fmt.Errorf("store: %s %q: %w", op, key, err)
}
