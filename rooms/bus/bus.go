// Package bus connects Assist to NATS: an embedded nats-server with JetStream for a single
// machine, or an external server or cluster, behind one type.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says where NATS is.
type Config struct {
	// URL of an external NATS server or cluster (comma-separated); empty runs one embedded.
	URL string
	// StoreDir is the embedded server's JetStream file store.
	StoreDir string
	// Name identifies this node's connection.
	Name     string
	Replicas int // JetStream replicas for Assist's streams and buckets (1 for one server)
	Logger   *slog.Logger
}

// Bus is a NATS connection with JetStream, and the embedded server when there is one.
type Bus struct {
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Replicas int
	embedded *server.Server
	closed   chan struct{} // closed once the connection is closed for good
	log      *slog.Logger
}

// Open starts the embedded server if needed and connects.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Bus{Replicas: max(cfg.Replicas, 1), log: log, closed: make(chan struct{})}
	url := cfg.URL
	opts := []nats.Option{
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(16 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	}
	if url == "" {
		ns, err := startEmbedded(cfg.StoreDir)
		if err != nil {
			return nil, err
		}
		b.embedded = ns
		opts = append(opts, nats.InProcessServer(ns))
		log.Info("embedded NATS started", "store", cfg.StoreDir)
	}
	conn, err := connect(ctx, url, opts)
	if err != nil {
		b.shutdownEmbedded()
		return nil, err
	}
	b.Conn = conn
	js, err := jetstream.New(conn)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.JS = js
	return b, nil
}

func connect(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	for {
		conn, err := nats.Connect(url, opts...)
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to NATS at %q: %w", url, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func startEmbedded(storeDir string) (*server.Server, error) {
	if storeDir == "" {
		return nil, errors.New("bus: the embedded NATS server needs a store directory")
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "assist-embedded",
		DontListen: true,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS: not ready within 10s")
	}
	return ns, nil
}

// Ping checks that NATS answers.
func (b *Bus) Ping(ctx context.Context) error {
	if b.Conn.Status() != nats.CONNECTED {
		return fmt.Errorf("nats is %s", b.Conn.Status())
	}
	_, err := b.JS.AccountInfo(ctx)
	return err
}

// Embedded is the in-process server, or nil when NATS is external.
func (b *Bus) Embedded() *server.Server { return b.embedded }

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.Conn != nil {
		if err := b.Conn.Drain(); err == nil {
			select {
			case <-b.closed:
			case <-time.After(5 * time.Second):
			}
		}
		b.Conn.Close()
	}
	b.shutdownEmbedded()
}

func (b *Bus) shutdownEmbedded() {
	if b.embedded != nil {
		b.embedded.Shutdown()
		b.embedded.WaitForShutdown()
	}
}
