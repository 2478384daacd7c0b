// Package signaling is the edge of Assist: the HTTP API, the WebSocket signaling, the pages and
// auth. Its Server wires one node together: NATS (rooms), the SFU (media) and object storage
// (recording/store).
package signaling

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/media/turnserver"
	"github.com/assist-video/assist/recording"
	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/rooms/bus"
	"github.com/assist-video/assist/rooms/notify"
	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/config"
)

// Server is one Assist node.
type Server struct {
	cfg             config.Config
	log             *slog.Logger
	bus             *bus.Bus
	rooms           *rooms.Store
	idempotency     *rooms.Idempotency
	objects         *store.Store
	s3              *store.Embedded // the embedded object store, when no S3 endpoint is configured
	sfu             *media.SFU
	turn            *turnserver.Server // the embedded TURN server, when configured
	webhooks        *webhooks.Webhooks
	audit           *audit.Trail
	notifier        *notify.Notifier
	recorder        *recording.Manager
	recordingMu     sync.Mutex
	recordingOwners map[string]recordingOwner // recordings running on this node
	autoRecordMu    sync.Mutex                // one automatic start at a time
	echoRelays      sync.Map                  // TURN scopes of setup tests without a session → expiry
	templates       *notify.Templates
	workers         sync.WaitGroup // background workers (webhook delivery, ...), stopped on shutdown
	stopWorkers     context.CancelFunc
	turnSecret      []byte
	issuer          *auth.Issuer
	metrics         *metrics
	limits          *limits
	captions        *captionService
	cluster         *cluster      // the node registry, placement and relays (placement.go)
	waiting         *waitingRooms // organisations' lines, fanned out to this node's waiting customers
	idp             *idpKeys      // organisations' identity providers' key sets (idp.go)
	staff           *staffHub     // specialists' consoles on this node (staff.go): presence, team chat, live queue

	// quality samples each call's quality and keeps the samples (quality.go).
	quality *qualitySampler

	listener net.Listener
	http     *http.Server
	baseURL  string
	boot     Bootstrap

	// Sockets are hijacked from net/http, so the server tracks them itself.
	socketCtx    context.Context
	closeSockets context.CancelFunc
	sockets      sync.WaitGroup
	socketsMu    sync.Mutex // orders counting sockets with draining (openSocket)
	draining     atomic.Bool
	notReady     atomic.Bool   // /readyz says 503: the drain delay before draining
	joinTimeout  time.Duration // how long a new socket has to send join
	patterns     []string      // the routes registered, for the OpenAPI conformance test
}

// Bootstrap is what the first start created, for the operator to read once.
type Bootstrap struct {
	Created        bool
	OrganizationID string
	Email          string
	Password       string // empty unless generated or set on this start
	APIKey         string // empty unless generated or set on this start
}

// NewServer starts the node's parts and binds its listener; Run serves.
func NewServer(ctx context.Context, cfg config.Config, log *slog.Logger) (s *Server, err error) {
	s = &Server{cfg: cfg, log: log, metrics: newMetrics(), limits: newLimits(cfg), joinTimeout: defaultJoinTimeout}
	defer func() {
		if err != nil {
			s.closeParts()
		}
	}()
	s.idp = newIdPKeys(cfg.IdPAllowPrivate, log.With("component", "idp"))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	if s.bus, err = bus.Open(ctx, bus.Config{URL: cfg.NATSURL, StoreDir: cfg.Path("nats"), Name: "assist-" + cfg.NodeID, Logger: log,
		Replicas: cfg.NATSReplicas}); err != nil {
		return nil, err
	}
	if s.rooms, err = rooms.Open(ctx, s.bus, log); err != nil {
		return nil, err
	}
	s.rooms.SetMaxParticipants(cfg.MaxParticipants)
	s.waiting = newWaitingRooms(s.rooms, log)
	if s.staff, err = newStaffHub(ctx, s); err != nil {
		return nil, err
	}
	if s.idempotency, err = rooms.OpenIdempotency(ctx, s.bus); err != nil {
		return nil, err
	}
	if err := s.openObjectStore(ctx); err != nil {
		return nil, err
	}
	if err := s.openPlatform(ctx); err != nil {
		return nil, err
	}
	if err := s.openNotifier(ctx); err != nil {
		return nil, err
	}
	if err := s.openRecorder(ctx); err != nil {
		return nil, err
	}
	if err := s.loadKeyring(ctx); err != nil {
		return nil, err
	}
	if s.boot, err = s.bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	s.sfu, err = media.New(media.Config{
		ICELoopback: cfg.ICELoopback,
		UDPPort:     cfg.UDPPort,
		ICETCPAddr:  cfg.ICETCP,
		NAT1To1IPs:  cfg.NAT1To1IPs,
		Logger:      log.With("component", "sfu"),
	})
	if err != nil {
		return nil, fmt.Errorf("sfu: %w", err)
	}
	s.metrics.watchSFU(s.sfu)
	if err := s.openQuality(ctx); err != nil {
		return nil, err
	}
	if err := s.openCaptions(); err != nil {
		return nil, fmt.Errorf("captions: %w", err)
	}
	if err := s.startTURN(ctx); err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}

	if s.listener, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("addr: %w", err)
	}
	if cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		s.listener = tls.NewListener(s.listener, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.baseURL = cfg.BaseURL(s.listener.Addr().String())
	if err := s.openCluster(ctx); err != nil {
		return nil, fmt.Errorf("node registry: %w", err)
	}
	s.socketCtx, s.closeSockets = context.WithCancel(context.Background())
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout, // slowloris: headers arrive in time or the connection closes
		ReadTimeout:       cfg.ReadTimeout,       // uploads move their own deadline on (slowUpload)
		WriteTimeout:      60 * time.Second,      // downloads move their own deadline on (slowDownload)
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

func (s *Server) openObjectStore(ctx context.Context) error {
	cfg := store.Config{
		Endpoint: s.cfg.S3Endpoint, AccessKey: s.cfg.S3AccessKey, SecretKey: s.cfg.S3SecretKey,
		Bucket: s.cfg.S3Bucket, Region: s.cfg.S3Region, UseTLS: s.cfg.S3UseTLS,
	}
	if cfg.Endpoint == "" {
		e, err := store.StartEmbedded(s.cfg.Path("objects"), s.log.With("component", "s3"))
		if err != nil {
			return fmt.Errorf("embedded object store: %w", err)
		}
		s.s3 = e
		cfg = e.Config()
	}
	objects, err := store.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("object store: %w", err)
	}
	s.objects = objects
	return s.openRegions(ctx)
}

func (s *Server) bootstrap(ctx context.Context) (Bootstrap, error) {
	first, err := s.rooms.ClaimOnce(ctx, "bootstrap")
	if err != nil || !first {
		return Bootstrap{Email: s.cfg.BootstrapEmail}, err
	}
	b := Bootstrap{Created: true, Email: s.cfg.BootstrapEmail, Password: s.cfg.BootstrapPassword, APIKey: s.cfg.BootstrapAPIKey}
	if b.Password == "" {
		b.Password = auth.NewPassword()
	}
	if b.APIKey == "" {
		b.APIKey = auth.NewAPIKey()
	}
	org, err := s.rooms.CreateOrganization(ctx, "Default organisation")
	if err != nil {
		return b, err
	}
	b.OrganizationID = org.ID
	hash, err := auth.HashPassword(b.Password)
	if err != nil {
		return b, err
	}
	if _, err := s.rooms.CreateSpecialist(ctx, org.ID, b.Email, "Specialist", hash, rooms.StaffAdmin); err != nil {
		return b, err
	}
	// The first key administers the whole platform: it creates the other organisations.
	if _, err := s.rooms.AddAPIKey(ctx, org.ID, "bootstrap", auth.HashAPIKey(b.APIKey), rooms.AllScopes()); err != nil {
		return b, err
	}
	return b, nil
}

// URL is where users reach this node.
func (s *Server) URL() string { return s.baseURL }

// Bootstrap says what the first start created.
func (s *Server) Bootstrap() Bootstrap { return s.boot }

// Run serves until ctx is done, then shuts down: drain (stop accepting, tell participants)
// within the shutdown timeout, then force.
func (s *Server) Run(ctx context.Context) error {
	workersCtx, stopWorkers := context.WithCancel(context.Background())
	s.stopWorkers = stopWorkers
	s.runPlatform(workersCtx)
	s.interruptPreviousRun(workersCtx) // before serving: no socket of this run exists yet
	s.runCluster(workersCtx)           // beat once before serving, so sessions can be placed here
	s.runQuality(workersCtx)
	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.listener) }()
	s.log.Info("serving", "url", s.baseURL, "addr", s.listener.Addr().String())
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	s.shutdown()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) shutdown() {
	if s.cfg.DrainDelay > 0 {
		s.notReady.Store(true)
		s.log.Info("not ready; draining after the delay", "delay", s.cfg.DrainDelay)
		time.Sleep(s.cfg.DrainDelay)
	}
	s.socketsMu.Lock()
	s.draining.Store(true)
	s.socketsMu.Unlock()
	s.leaveCluster() // no new sessions here; the survivors take these over
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	_ = s.http.Shutdown(ctx)
	s.closeSockets()
	done := make(chan struct{})
	go func() { s.sockets.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("sockets did not close in time")
	}
	s.waiting.close()
	s.captions.close()
	s.staff.close()
	_ = s.http.Close()
	// Stop recordings (their last segments and manifests are queued), then drain the workers:
	// uploads and deliveries under way finish, the rest wait on disk and in JetStream.
	if err := s.recorder.Close(ctx); err != nil {
		s.log.Warn("recordings did not drain in time", "err", err)
	}
	s.stopWorkers()
	s.workers.Wait()
	s.closeParts()
	s.log.Info("stopped")
}

func (s *Server) closeParts() {
	if s.turn != nil {
		_ = s.turn.Close()
	}
	if s.sfu != nil {
		_ = s.sfu.Close()
	}
	if s.s3 != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.s3.Close(ctx)
		cancel()
	}
	if s.templates != nil {
		s.templates.Close()
	}
	if s.bus != nil {
		s.bus.Close()
	}
}
