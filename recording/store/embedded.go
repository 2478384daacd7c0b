package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/assist-video/assist/recording/store/internal/s3disk"
	"github.com/assist-video/assist/recording/store/internal/sigv4"
)

// Embedded is an S3 server inside this process, for running without MinIO or
// S3: gofakes3 speaking the protocol, objects kept as files under a directory
// (package s3disk), served on a random loopback port. The Store talks to it
// over HTTP with minio-go exactly as it talks to a real S3.
//
// gofakes3 checks no credentials, so every request first passes a Signature V4
// check (package sigv4) against a key pair made at start. Any other local
// process would otherwise read every recording from the loopback port.
type Embedded struct {
	cfg     Config
	backend *s3disk.Backend
	srv     *http.Server
	served  chan struct{} // closed when the Serve goroutine has returned

	closeOnce sync.Once
	closeErr  error
}

// embeddedBucket and embeddedRegion are fixed: nobody else uses this server.
const (
	embeddedBucket = "assist"
	embeddedRegion = "us-east-1"
)

// StartEmbedded serves the objects under dir (created if missing) on
// 127.0.0.1 and a random port. One process at a time may use a dir.
// Credentials are new on every start: presigned URLs do not outlive a restart.
func StartEmbedded(dir string, logger *slog.Logger) (*Embedded, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	backend, err := s3disk.Open(dir, logger)
	if err != nil {
		return nil, fmt.Errorf("store: embedded: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		backend.Close()
		return nil, fmt.Errorf("store: embedded: %w", err)
	}
	creds := sigv4.Credentials{AccessKey: "assist-" + rand.Text()[:12], SecretKey: rand.Text() + rand.Text()}
	faker := gofakes3.New(backend, gofakes3.WithLogger(fakesLogger{logger}))
	e := &Embedded{
		cfg: Config{
			Endpoint:  ln.Addr().String(),
			AccessKey: creds.AccessKey,
			SecretKey: creds.SecretKey,
			Bucket:    embeddedBucket,
			Region:    embeddedRegion,
		},
		backend: backend,
		srv: &http.Server{
			Handler:           sigv4.Handler(creds, faker.Server()),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		served: make(chan struct{}),
	}
	go func() {
		defer close(e.served)
		if err := e.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("embedded object store stopped serving", "err", err)
		}
	}()
	logger.Info("embedded object store started", "dir", dir, "endpoint", e.cfg.Endpoint)
	return e, nil
}

// Config is what New needs to use this server.
func (e *Embedded) Config() Config { return e.cfg }

// Close stops the server: requests in flight may finish until ctx is done,
// then connections are cut. Uploads cut short leave nothing behind.
func (e *Embedded) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		err := e.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, e.srv.Close())
		}
		<-e.served
		e.closeErr = errors.Join(err, e.backend.Close())
	})
	return e.closeErr
}

// fakesLogger routes gofakes3's logging to slog; its per-request lines are debug.
type fakesLogger struct{ logger *slog.Logger }

func (l fakesLogger) Print(level gofakes3.LogLevel, v ...any) {
	msg := fmt.Sprint(v...)
	switch level {
	case gofakes3.LogErr:
		l.logger.Error("gofakes3", "detail", msg)
	case gofakes3.LogWarn:
		l.logger.Warn("gofakes3", "detail", msg)
	default:
		l.logger.Debug("gofakes3", "detail", msg)
	}
}
