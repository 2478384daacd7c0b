package s3disk

import (
	"cmp"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// upload is a multipart upload in progress. Its parts are files under
// uploads/{id}; the upload itself lives only in memory, so a restart drops
// it (Open empties uploads/) and the client starts again.
type upload struct {
	id        gofakes3.UploadID
	bucket    string
	key       string
	headers   map[string]string
	initiated time.Time
	parts     map[int]part
}

type part struct {
	md5      []byte
	size     int64
	modified time.Time
}

func (b *Backend) uploadDir(id gofakes3.UploadID) string {
	return filepath.Join(b.uploadsDir(), string(id))
}

func (b *Backend) partPath(id gofakes3.UploadID, n int) string {
	return filepath.Join(b.uploadDir(id), strconv.Itoa(n))
}

// lookupUpload finds an upload of bucketName/key. The caller holds b.mu.
func (b *Backend) lookupUpload(bucketName, key string, id gofakes3.UploadID) (*upload, error) {
	up := b.uploads[id]
	if up == nil || up.bucket != bucketName || up.key != key {
		return nil, gofakes3.ErrNoSuchUpload
	}
	return up, nil
}

func (b *Backend) CreateMultipartUpload(bucketName, key string, meta map[string]string) (gofakes3.UploadID, error) {
	id := gofakes3.UploadID(rand.Text())
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buckets[bucketName] == nil {
		return "", gofakes3.BucketNotFound(bucketName)
	}
	if err := os.Mkdir(b.uploadDir(id), 0o700); err != nil {
		return "", err
	}
	b.uploads[id] = &upload{
		id:        id,
		bucket:    bucketName,
		key:       key,
		headers:   storedHeaders(meta),
		initiated: time.Now().UTC(),
		parts:     map[int]part{},
	}
	return id, nil
}

// UploadPart stores a part as a file. Parts are not synced to disk: they do
// not outlive the process anyway, and the assembled object is synced.
func (b *Backend) UploadPart(bucketName, key string, id gofakes3.UploadID, partNumber int, contentLength int64, input io.Reader) (string, error) {
	if partNumber < 1 || partNumber > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	b.mu.RLock()
	_, err := b.lookupUpload(bucketName, key, id)
	b.mu.RUnlock()
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(b.uploadDir(id), "part-*")
	if err != nil {
		return "", gofakes3.ErrNoSuchUpload // aborted meanwhile
	}
	defer discard(tmp)
	sum := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), input)
	if err != nil {
		return "", err
	}
	if contentLength >= 0 && n != contentLength {
		return "", gofakes3.ErrIncompleteBody
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	up, err := b.lookupUpload(bucketName, key, id)
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), b.partPath(id, partNumber)); err != nil {
		return "", err
	}
	up.parts[partNumber] = part{md5: sum.Sum(nil), size: n, modified: time.Now().UTC()}
	return `"` + hex.EncodeToString(sum.Sum(nil)) + `"`, nil
}

// CompleteMultipartUpload concatenates the parts into an object file and
// commits it. The ETag is S3's: the MD5 of the parts' MD5s, a dash, the count.
func (b *Backend) CompleteMultipartUpload(bucketName, key string, id gofakes3.UploadID, input *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	b.mu.Lock()
	up, err := b.lookupUpload(bucketName, key, id)
	if err == nil {
		err = checkCompletion(up, input)
	}
	if err != nil {
		b.mu.Unlock()
		return "", "", err
	}
	// Claim the upload so that no part changes while it is assembled.
	delete(b.uploads, id)
	b.mu.Unlock()

	etag, err := b.assemble(up, input.Parts)
	if err != nil {
		b.mu.Lock()
		if b.buckets[up.bucket] != nil {
			b.uploads[id] = up // the client may retry or abort
		}
		b.mu.Unlock()
		return "", "", err
	}
	_ = os.RemoveAll(b.uploadDir(id))
	return "", etag, nil
}

func checkCompletion(up *upload, input *gofakes3.CompleteMultipartUploadRequest) error {
	if len(input.Parts) == 0 {
		return gofakes3.ErrorMessage(gofakes3.ErrMalformedXML, "no parts")
	}
	prev := 0
	for _, p := range input.Parts {
		if p.PartNumber <= prev {
			return gofakes3.ErrInvalidPartOrder
		}
		prev = p.PartNumber
		stored, ok := up.parts[p.PartNumber]
		if !ok || strings.Trim(p.ETag, `"`) != hex.EncodeToString(stored.md5) {
			return gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d was not uploaded with that ETag", p.PartNumber)
		}
	}
	return nil
}

func (b *Backend) assemble(up *upload, parts []gofakes3.CompletedPart) (string, error) {
	tmp, err := os.CreateTemp(b.tmpDir(), "complete-*")
	if err != nil {
		return "", err
	}
	defer discard(tmp)
	content, partSums := md5.New(), md5.New()
	var size int64
	for _, p := range parts {
		n, err := appendFile(io.MultiWriter(tmp, content), b.partPath(up.id, p.PartNumber))
		if err != nil {
			return "", err
		}
		size += n
		partSums.Write(up.parts[p.PartNumber].md5)
	}
	if err := b.commit(tmp, up.bucket, up.key, up.headers, content.Sum(nil), size, nil); err != nil {
		return "", err
	}
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(partSums.Sum(nil)), len(parts)), nil
}

func appendFile(w io.Writer, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(w, f)
}

func (b *Backend) AbortMultipartUpload(bucketName, key string, id gofakes3.UploadID) error {
	b.mu.Lock()
	_, err := b.lookupUpload(bucketName, key, id)
	if err == nil {
		delete(b.uploads, id)
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return os.RemoveAll(b.uploadDir(id))
}

func (b *Backend) ListMultipartUploads(bucketName string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	b.mu.RLock()
	if b.buckets[bucketName] == nil {
		b.mu.RUnlock()
		return nil, gofakes3.BucketNotFound(bucketName)
	}
	var ups []upload
	for _, up := range b.uploads {
		if up.bucket == bucketName && strings.HasPrefix(up.key, prefix.Prefix) {
			ups = append(ups, *up)
		}
	}
	b.mu.RUnlock()
	slices.SortFunc(ups, func(x, y upload) int {
		return cmp.Or(strings.Compare(x.key, y.key), x.initiated.Compare(y.initiated), strings.Compare(string(x.id), string(y.id)))
	})
	if marker != nil {
		// Start after the marked upload, or after every upload of the marked
		// key when no upload id is given.
		start := len(ups)
		for i, up := range ups {
			if marker.UploadID != "" && up.key == marker.Object && up.id == marker.UploadID {
				start = i + 1
				break
			}
			if up.key > marker.Object {
				start = i
				break
			}
		}
		ups = ups[start:]
	}

	result := &gofakes3.ListMultipartUploadsResult{
		Bucket:     bucketName,
		Prefix:     prefix.Prefix,
		Delimiter:  prefix.Delimiter,
		MaxUploads: limit,
	}
	if marker != nil {
		result.KeyMarker, result.UploadIDMarker = marker.Object, marker.UploadID
	}
	seen := map[string]bool{}
	for _, up := range ups {
		if limit > 0 && int64(len(result.Uploads)+len(result.CommonPrefixes)) == limit {
			result.IsTruncated = true
			break
		}
		var match gofakes3.PrefixMatch
		if !prefix.Match(up.key, &match) {
			continue
		}
		if match.CommonPrefix {
			if !seen[match.MatchedPart] {
				seen[match.MatchedPart] = true
				result.CommonPrefixes = append(result.CommonPrefixes, match.AsCommonPrefix())
			}
			continue
		}
		result.Uploads = append(result.Uploads, gofakes3.ListMultipartUploadItem{
			Key:       up.key,
			UploadID:  up.id,
			Initiated: gofakes3.NewContentTime(up.initiated),
		})
		result.NextKeyMarker, result.NextUploadIDMarker = up.key, up.id
	}
	return result, nil
}

func (b *Backend) ListParts(bucketName, key string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	b.mu.RLock()
	up, err := b.lookupUpload(bucketName, key, id)
	if err != nil {
		b.mu.RUnlock()
		return nil, err
	}
	numbers := slices.Sorted(func(yield func(int) bool) {
		for n := range up.parts {
			if n > marker && !yield(n) {
				return
			}
		}
	})
	parts := make([]part, len(numbers))
	for i, n := range numbers {
		parts[i] = up.parts[n]
	}
	b.mu.RUnlock()

	result := &gofakes3.ListMultipartUploadPartsResult{
		Bucket:           bucketName,
		Key:              key,
		UploadID:         id,
		PartNumberMarker: marker,
		MaxParts:         limit,
	}
	for i, n := range numbers {
		if limit > 0 && int64(len(result.Parts)) == limit {
			result.IsTruncated = true
			break
		}
		result.Parts = append(result.Parts, gofakes3.ListMultipartUploadPartItem{
			PartNumber:   n,
			LastModified: gofakes3.NewContentTime(parts[i].modified),
			ETag:         `"` + hex.EncodeToString(parts[i].md5) + `"`,
			Size:         parts[i].size,
		})
		result.NextPartNumberMarker = n
	}
	return result, nil
}
