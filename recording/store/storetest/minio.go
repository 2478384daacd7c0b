// Package storetest starts real S3 servers for tests of any package that
// stores objects: a MinIO server process, and the embedded store.
package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/assist-video/assist/recording/store"
)

// DefaultMinIOBin is where .ci/run installs the MinIO server.
const DefaultMinIOBin = "/root/.cache/assist/bin/minio"

// minioInstall is the command that .ci/run runs; MinIO has no tagged module
// versions, so the version is pinned by pseudo-version.
const minioInstall = "GOBIN=/root/.cache/assist/bin go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIOBin is the MinIO server binary tests use: $ASSIST_MINIO_BIN, or DefaultMinIOBin.
func MinIOBin() string {
	if bin := os.Getenv("ASSIST_MINIO_BIN"); bin != "" {
		return bin
	}
	return DefaultMinIOBin
}

// StartMinIO starts a MinIO server process on 127.0.0.1 with random ports
// and a temporary data directory, waits until it is ready, and kills it when
// the test ends. The returned Config names a bucket that does not exist yet
// (store.New creates it). Without the binary the test fails, saying how to
// install it: MinIO is AGPL-licensed, so it runs as a process, never imported.
func StartMinIO(t testing.TB) store.Config {
	t.Helper()
	return NewMinIO(t).Config()
}

// MinIO is a MinIO server process that a test can stop and start again, to
// see how code copes with its object storage going away and coming back.
type MinIO struct {
	t        testing.TB
	bin, dir string
	cfg      store.Config
	console  string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited; nil when stopped
}

// NewMinIO starts a MinIO server like StartMinIO and returns it.
func NewMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := MinIOBin()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("MinIO server binary missing: %v\n"+
			"Install it with:\n\t%s\n"+
			"(`bash .ci/run` does this), or point ASSIST_MINIO_BIN at a minio binary.", err, minioInstall)
	}
	m := &MinIO{t: t, bin: bin, dir: t.TempDir()}
	m.cfg = store.Config{
		AccessKey: "assist" + rand.Text()[:8],
		SecretKey: rand.Text(),
		Bucket:    "assist-test",
		Region:    "us-east-1",
	}
	t.Cleanup(m.Stop)
	// Picking free ports first can race with other processes, so a server
	// that dies at start is tried again on new ports.
	var err error
	for range 3 {
		m.cfg.Endpoint, m.console = freeAddr(t), freeAddr(t)
		if err = m.start(); err == nil {
			return m
		}
	}
	t.Fatalf("starting MinIO: %v", err)
	return nil
}

// Config is what store.New needs to use this server.
func (m *MinIO) Config() store.Config { return m.cfg }

// Stop kills the server (no graceful shutdown: as a crash or an outage would)
// and waits until it has exited. Stopping a stopped server does nothing.
func (m *MinIO) Stop() {
	if m.exited == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.exited = nil
}

// Start starts a stopped server again, on the same address and with the same
// data, and waits until it is ready.
func (m *MinIO) Start() {
	m.t.Helper()
	if m.exited != nil {
		m.t.Fatal("storetest: MinIO is already running")
	}
	if err := m.start(); err != nil {
		m.t.Fatalf("restarting MinIO: %v", err)
	}
}

func (m *MinIO) start() error {
	logPath := filepath.Join(m.dir, "minio.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"),
		"--address", m.cfg.Endpoint, "--console-address", m.console,
		"--certs-dir", filepath.Join(m.dir, "certs"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.cfg.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.cfg.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", m.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited
	if err := waitReady(m.cfg.Endpoint, exited, 30*time.Second); err != nil {
		m.Stop()
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w; its output:\n%s", err, out)
	}
	return nil
}

// waitReady polls MinIO's readiness endpoint until it answers 200 without
// "x-minio-server-status: offline": MinIO answers 200 while its object layer
// is still starting (notably on a restart with data) and marks that only in
// the header; S3 requests then fail with XMinioServerNotInitialized.
func waitReady(addr string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/minio/health/ready", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Minio-Server-Status") != "offline" {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("minio exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("minio not ready on %s after %s", addr, timeout)
		case <-tick.C:
		}
	}
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartEmbedded starts the embedded store on a temporary directory and closes
// it when the test ends. Its warnings and errors go to the test's output.
func StartEmbedded(t testing.TB) store.Config {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := store.StartEmbedded(t.TempDir(), logger)
	if err != nil {
		t.Fatalf("starting the embedded store: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("closing the embedded store: %v", err)
		}
	})
	return e.Config()
}
