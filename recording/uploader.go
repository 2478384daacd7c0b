package recording

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/assist-video/assist/recording/store"
)

// Backoff between upload attempts while the object store is unreachable.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// putTimeout bounds one upload attempt: a store that accepts the connection and then
	// hangs (one restarting, say) must not hold the queue forever.
	putTimeout = 30 * time.Second
)

// upload is one local file waiting to be stored.
type upload struct {
	path        string
	key         string
	contentType string
	after       func() // runs once the object is stored and the file deleted
}

// Uploader moves finished files from the spool directory to the object store, in the order
// they were queued, deleting each local file only once it is stored. While the store is
// unreachable it retries with exponential backoff and keeps everything queued: nothing is
// dropped while the disk lasts. The queue lives in memory; after a crash Recover rebuilds it
// from the spool directory.
type Uploader struct {
	store *store.Store
	log   *slog.Logger

	worker sync.Mutex // held by whoever is uploading: Run, or drain without Run

	mu      sync.Mutex
	queue   []upload
	current bool // an upload taken off the queue is in progress
	wake    chan struct{}
}

func newUploader(s *store.Store, log *slog.Logger) *Uploader {
	return &Uploader{store: s, log: log, wake: make(chan struct{}, 1)}
}

// enqueue adds a finished local file to the queue.
func (u *Uploader) enqueue(it upload) {
	u.mu.Lock()
	u.queue = append(u.queue, it)
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Backlog is the number of files waiting to be uploaded, the one in progress included.
func (u *Uploader) Backlog() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := len(u.queue)
	if u.current {
		n++
	}
	return n
}

// Run uploads until ctx ends.
func (u *Uploader) Run(ctx context.Context) error {
	u.worker.Lock()
	defer u.worker.Unlock()
	for {
		if err := u.uploadAll(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-u.wake:
		}
	}
}

// drain returns once the queue is empty or ctx ends. It uploads itself unless Run is doing so.
func (u *Uploader) drain(ctx context.Context) error {
	if u.worker.TryLock() {
		defer u.worker.Unlock()
		return u.uploadAll(ctx)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for u.Backlog() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// uploadAll uploads until the queue is empty; only ctx ending stops it.
func (u *Uploader) uploadAll(ctx context.Context) error {
	backoff := minBackoff
	for {
		u.mu.Lock()
		if len(u.queue) == 0 {
			u.mu.Unlock()
			return nil
		}
		it := u.queue[0]
		u.current = true
		u.queue = u.queue[1:]
		u.mu.Unlock()

		err := u.uploadOne(ctx, it)
		if err == nil {
			backoff = minBackoff
			u.mu.Lock()
			u.current = false
			u.mu.Unlock()
			continue
		}
		// Put it back at the front and try again later.
		u.mu.Lock()
		u.queue = append([]upload{it}, u.queue...)
		u.current = false
		u.mu.Unlock()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		u.log.Warn("upload failed; retrying", "key", it.key, "in", backoff, "backlog", u.Backlog(), "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (u *Uploader) uploadOne(ctx context.Context, it upload) error {
	f, err := os.Open(it.path)
	if errors.Is(err, fs.ErrNotExist) {
		u.log.Warn("queued file is gone; skipping", "path", it.path)
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	putCtx, cancel := context.WithTimeout(ctx, putTimeout)
	defer cancel()
	if _, err := u.store.Put(putCtx, it.key, f, st.Size(), it.contentType); err != nil {
		return err
	}
	f.Close()
	if err := os.Remove(it.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		u.log.Warn("cannot delete an uploaded file", "path", it.path, "err", err)
	}
	if it.after != nil {
		it.after()
	}
	return nil
}
