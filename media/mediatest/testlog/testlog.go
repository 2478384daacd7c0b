// Package testlog gives tests a logger that writes to the test's output while the test runs
// and drops what goroutines still log after it has ended (Pion's and the SFU's goroutines
// outlive a test by a little). ASSIST_TEST_LOG=debug shows debug logs.
package testlog

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
)

// New returns the test's logger, at level unless ASSIST_TEST_LOG=debug. Call it before
// registering other cleanups, so that it stops writing after them.
func New(t testing.TB, level slog.Level) *slog.Logger {
	w := &writer{w: t.Output()}
	t.Cleanup(w.stop)
	if os.Getenv("ASSIST_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type writer struct {
	mu      sync.Mutex
	w       io.Writer
	stopped bool
}

func (w *writer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return len(b), nil
	}
	return w.w.Write(b)
}

func (w *writer) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
