// Package storetest starts real S3 servers for tests of any package that
// stores objects: a MinIO server process, and the embedded store.
package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
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
	bin := MinIOBin()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("MinIO server binary missing: %v\n"+
			"Install it with:\n\t%s\n"+
			"(`bash .ci/run` does this), or point ASSIST_MINIO_BIN at a minio binary.", err, minioInstall)
	}
	// Picking free ports first can race with other processes, so a server
	// that dies at start is tried again on new ports.
	var lastErr error
	for range 3 {
		cfg, err := startMinIO(t, bin)
		if err == nil {
			return cfg
		}
		lastErr = err
	}
	t.Fatalf("starting MinIO: %v", lastErr)
	return store.Config{}
}

func startMinIO(t testing.TB, bin string) (store.Config, error) {
	dir := t.TempDir()
	addr, consoleAddr := freeAddr(t), freeAddr(t)
	user, password := "assist"+rand.Text()[:8], rand.Text()
	logPath := filepath.Join(dir, "minio.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", addr, "--console-address", consoleAddr,
		"--certs-dir", filepath.Join(dir, "certs"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+user,
		"MINIO_ROOT_PASSWORD="+password,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	if err := waitReady(addr, exited, 30*time.Second); err != nil {
		stop()
		out, _ := os.ReadFile(logPath)
		return store.Config{}, fmt.Errorf("%w; its output:\n%s", err, out)
	}
	t.Cleanup(stop)
	return store.Config{
		Endpoint:  addr,
		AccessKey: user,
		SecretKey: password,
		Bucket:    "assist-test",
		Region:    "us-east-1",
	}, nil
}

// waitReady polls MinIO's readiness endpoint until it answers 200.
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
			if resp.StatusCode == http.StatusOK {
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
// it when the test ends.
func StartEmbedded(t testing.TB) store.Config {
	t.Helper()
	e, err := store.StartEmbedded(t.TempDir(), nil)
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
