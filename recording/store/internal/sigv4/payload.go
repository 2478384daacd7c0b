package sigv4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrPayload is returned by a request body whose bytes are not the ones that
// were signed; the server then fails the request instead of storing them.
var ErrPayload = errors.New("sigv4: payload does not match its signature")

// maxChunk bounds one aws-chunked chunk, which is held in memory until its
// signature is checked. minio-go sends 64 KiB chunks.
const maxChunk = 16 << 20

// sha256Body checks, at EOF, that the body hashes to the signed
// X-Amz-Content-Sha256.
type sha256Body struct {
	body io.ReadCloser
	hash hash.Hash
	want []byte
}

func (b *sha256Body) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.hash.Write(p[:n])
	if err == io.EOF && !bytes.Equal(b.hash.Sum(nil), b.want) {
		return n, ErrPayload
	}
	return n, err
}

func (b *sha256Body) Close() error { return b.body.Close() }

// decodeChunked returns a copy of r whose body is the decoded bytes of r's
// aws-chunked body, with headers rewritten so that the handler behind sees a
// plain unsigned upload.
func decodeChunked(r *http.Request, key []byte, signedAt time.Time, scope credentialScope, seed string) (*http.Request, error) {
	size, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || size < 0 {
		return nil, &authError{status: http.StatusBadRequest, code: "MissingContentLength", message: "bad X-Amz-Decoded-Content-Length"}
	}
	next := r.WithContext(r.Context())
	next.Header = r.Header.Clone()
	next.Body = &chunkedBody{
		body:      r.Body,
		src:       bufio.NewReader(r.Body),
		key:       key,
		prefix:    "AWS4-HMAC-SHA256-PAYLOAD\n" + signedAt.Format(timeFormat) + "\n" + scope.String() + "\n",
		prevSig:   seed,
		remaining: size,
	}
	next.ContentLength = size
	next.Header.Set("Content-Length", strconv.FormatInt(size, 10))
	next.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	next.Header.Del("X-Amz-Decoded-Content-Length")
	// aws-chunked describes the transfer, not the object: S3 does not store
	// it, and a browser given it back on download would fail.
	var encodings []string
	for _, e := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
		if e = strings.TrimSpace(e); e != "" && e != "aws-chunked" {
			encodings = append(encodings, e)
		}
	}
	if len(encodings) == 0 {
		next.Header.Del("Content-Encoding")
	} else {
		next.Header.Set("Content-Encoding", strings.Join(encodings, ","))
	}
	return next, nil
}

// emptySHA256 is the hex SHA-256 of no bytes, part of every chunk's string to sign.
var emptySHA256 = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// chunkedBody decodes STREAMING-AWS4-HMAC-SHA256-PAYLOAD:
//
//	hex(size);chunk-signature=<sig>\r\n<data>\r\n ... 0;chunk-signature=<sig>\r\n\r\n
//
// Each chunk's signature chains from the previous one (the first from the
// request's signature), so no chunk can be altered, dropped or reordered.
// A chunk's bytes are released only once its signature checks.
type chunkedBody struct {
	body      io.Closer
	src       *bufio.Reader
	key       []byte
	prefix    string // the constant start of every chunk's string to sign
	prevSig   string
	remaining int64 // decoded bytes still announced by X-Amz-Decoded-Content-Length
	started   bool

	buf   []byte // reused for every chunk
	chunk []byte // verified bytes of the current chunk, not yet read
	off   int
	done  bool
	err   error
}

func (c *chunkedBody) Read(p []byte) (int, error) {
	for c.off == len(c.chunk) && !c.done && c.err == nil {
		c.err = c.next()
	}
	if c.off < len(c.chunk) {
		n := copy(p, c.chunk[c.off:])
		c.off += n
		return n, nil
	}
	if c.done {
		return 0, io.EOF
	}
	return 0, c.err
}

func (c *chunkedBody) Close() error { return c.body.Close() }

// next reads and verifies one chunk.
func (c *chunkedBody) next() error {
	line, err := c.src.ReadSlice('\n')
	if err == io.EOF && len(line) == 0 && !c.started && c.remaining == 0 {
		// minio-go sends an empty object as an empty body, with no final chunk.
		c.done = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: reading chunk header: %v", ErrPayload, err)
	}
	c.started = true
	header, ok := strings.CutSuffix(string(line), "\r\n")
	sizeHex, sig, ok2 := strings.Cut(header, ";chunk-signature=")
	if !ok || !ok2 {
		return fmt.Errorf("%w: bad chunk header", ErrPayload)
	}
	size, err := strconv.ParseInt(sizeHex, 16, 64)
	if err != nil || size < 0 || size > maxChunk || size > c.remaining {
		return fmt.Errorf("%w: bad chunk size %q", ErrPayload, sizeHex)
	}
	// Read into the buffer but release nothing until the signature checks.
	c.chunk, c.off = c.chunk[:0], 0
	buf := c.buf
	if int64(cap(buf)) < size+2 {
		buf = make([]byte, size+2)
		c.buf = buf
	}
	buf = buf[:size+2]
	if _, err := io.ReadFull(c.src, buf); err != nil {
		return fmt.Errorf("%w: reading chunk: %v", ErrPayload, err)
	}
	if !bytes.HasSuffix(buf, []byte("\r\n")) {
		return fmt.Errorf("%w: chunk not terminated", ErrPayload)
	}
	sum := sha256.Sum256(buf[:size])
	want := signature(c.key, c.prefix+c.prevSig+"\n"+emptySHA256+"\n"+hex.EncodeToString(sum[:]))
	if !equalSignatures(want, sig) {
		return fmt.Errorf("%w: chunk signature does not match", ErrPayload)
	}
	c.chunk = buf[:size]
	c.prevSig = want
	c.remaining -= size
	if size == 0 {
		if c.remaining != 0 {
			return fmt.Errorf("%w: body ended %d bytes short", ErrPayload, c.remaining)
		}
		c.done = true
	}
	return nil
}
