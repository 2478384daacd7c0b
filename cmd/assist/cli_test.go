package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/assist-video/assist/signaling"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/client"
	"github.com/assist-video/assist/signaling/config"
)

const cliTestKey = "ak_cli_test_key"

// startServer runs a whole node in-process (embedded NATS and S3, real HTTP on 127.0.0.1:0)
// and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	cfg := config.Defaults()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.NodeID = "cli-test"
	cfg.BootstrapAPIKey = cliTestKey
	cfg.BootstrapPassword = "correct horse battery"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.LogLevel = "warn"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := signaling.NewServer(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("NewServer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not shut down within 30s")
		}
	})
	return srv.URL()
}

// cliRun runs "assist args..." in-process with the given environment and returns its output.
func cliRun(env map[string]string, args ...string) (stdout, stderr string, err error) {
	var out, errOut strings.Builder
	err = run(args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestHelpListsTheCommands(t *testing.T) {
	out, _, err := cliRun(nil, "help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sessions list", "sessions create", "sessions end ID", "api-keys create", "api-keys revoke ID",
		"specialists create", "orgs list", "-api-key", "ASSIST_URL", "assist serve"} {
		if !strings.Contains(out, want) {
			t.Errorf("help does not mention %q:\n%s", want, out)
		}
	}
}

func TestCommandLineMistakesAreExplained(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"a group without a verb", []string{"sessions"}, "list, create, end"},
		{"an unknown verb", []string{"sessions", "delete"}, `unknown command "delete"`},
		{"a missing id", []string{"sessions", "end"}, "want ID"},
		{"an extra argument", []string{"sessions", "list", "extra"}, `unexpected argument "extra"`},
		{"an unknown flag", []string{"sessions", "list", "-nope"}, "flag provided but not defined"},
		{"a bad URL", []string{"sessions", "list", "-url", "localhost:8080"}, "-url"},
		{"a missing name", []string{"orgs", "create"}, "-name is required"},
		{"an unreachable node", []string{"sessions", "list", "-url", "http://127.0.0.1:1"}, "cannot reach the node at http://127.0.0.1:1"},
	}
	for _, c := range cases {
		t.Run(c.name+" is an error that says so", func(t *testing.T) {
			_, _, err := cliRun(nil, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestSessionCommands(t *testing.T) {
	url := startServer(t)
	env := map[string]string{"ASSIST_URL": url, "ASSIST_API_KEY": cliTestKey}

	t.Run("create prints the links", func(t *testing.T) {
		out, _, err := cliRun(env, "sessions", "create", "-customer-name", "Ann")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"id:", "state:", "waiting", "customer link:", url + "/c/", "specialist link:", url + "/s/"} {
			if !strings.Contains(out, want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		}
	})

	var ids []string
	t.Run("create -json prints the session", func(t *testing.T) {
		create := func(key string) api.Session {
			out, _, err := cliRun(env, "sessions", "create", "-json", "-idempotency-key", key)
			if err != nil {
				t.Fatal(err)
			}
			var s api.Session
			if err := json.Unmarshal([]byte(out), &s); err != nil || s.ID == "" || s.CustomerURL == "" {
				t.Fatalf("%v: %s", err, out)
			}
			return s
		}
		for _, key := range []string{"k1", "k2", "k3"} {
			ids = append(ids, create(key).ID)
		}
		if again := create("k3"); again.ID != ids[2] {
			t.Fatalf("a retry with the same idempotency key made another session: %s, first %s", again.ID, ids[2])
		}
	})

	t.Run("flags win over the environment", func(t *testing.T) {
		_, _, err := cliRun(map[string]string{"ASSIST_URL": "http://127.0.0.1:1", "ASSIST_API_KEY": "ak_wrong"},
			"sessions", "list", "-url", url, "-api-key", cliTestKey)
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("list prints a table, newest first", func(t *testing.T) {
		out, _, err := cliRun(env, "sessions", "list")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "STATE") {
			t.Fatalf("table:\n%s", out)
		}
		if !strings.HasPrefix(lines[1], ids[2]) || !strings.Contains(lines[1], "waiting") {
			t.Fatalf("first row is not the newest session %s:\n%s", ids[2], out)
		}
	})

	t.Run("list pages with -limit and -after, and -all follows the cursor", func(t *testing.T) {
		out, errOut, err := cliRun(env, "sessions", "list", "-limit", "2", "-json")
		if err != nil {
			t.Fatal(err)
		}
		var page api.SessionList
		if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Data) != 2 || !page.HasMore || page.NextCursor == "" {
			t.Fatalf("%v: %s", err, out)
		}
		if errOut != "" {
			t.Fatalf("-json wrote to stderr: %s", errOut)
		}
		out, errOut, err = cliRun(env, "sessions", "list", "-limit", "2")
		if err != nil || !strings.Contains(errOut, "-after "+page.NextCursor) {
			t.Fatalf("no hint for the next page: %v %q", err, errOut)
		}
		out, _, err = cliRun(env, "sessions", "list", "-limit", "2", "-after", page.NextCursor, "-json")
		var rest api.SessionList
		if err != nil || json.Unmarshal([]byte(out), &rest) != nil || len(rest.Data) != 2 || rest.HasMore {
			t.Fatalf("second page: %v %s", err, out)
		}
		out, _, err = cliRun(env, "sessions", "list", "-limit", "1", "-all", "-json")
		var all api.SessionList
		if err != nil || json.Unmarshal([]byte(out), &all) != nil || len(all.Data) != 4 || all.HasMore || all.NextCursor != "" {
			t.Fatalf("-all: %v %s", err, out)
		}
	})

	t.Run("end ends the session, flags after the id included", func(t *testing.T) {
		out, _, err := cliRun(env, "sessions", "end", ids[0])
		if err != nil || !strings.Contains(out, "ended") || !strings.Contains(out, ids[0]) {
			t.Fatalf("%v:\n%s", err, out)
		}
		out, _, err = cliRun(env, "sessions", "end", ids[1], "-json")
		var s api.Session
		if err != nil || json.Unmarshal([]byte(out), &s) != nil || s.State != api.SessionEnded || s.ID != ids[1] {
			t.Fatalf("%v: %s", err, out)
		}
		out, _, err = cliRun(env, "sessions", "list", "-json")
		var page api.SessionList
		if err != nil || json.Unmarshal([]byte(out), &page) != nil {
			t.Fatalf("%v: %s", err, out)
		}
		ended := 0
		for _, s := range page.Data {
			if s.State == api.SessionEnded {
				ended++
			}
		}
		if ended != 2 {
			t.Fatalf("%d sessions ended, want 2: %s", ended, out)
		}
	})

	t.Run("ending an unknown session says so", func(t *testing.T) {
		_, _, err := cliRun(env, "sessions", "end", "ses_nope")
		if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no such session") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("a wrong API key says how to give one", func(t *testing.T) {
		_, _, err := cliRun(map[string]string{"ASSIST_URL": url}, "sessions", "list", "-api-key", "ak_wrong")
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "-api-key") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestAdminCommands manages organisations, specialists and API keys through the real API.
func TestAdminCommands(t *testing.T) {
	url := startServer(t)
	env := map[string]string{"ASSIST_URL": url, "ASSIST_API_KEY": cliTestKey}
	runJSON := func(out any, args ...string) {
		t.Helper()
		stdout, stderr, err := cliRun(env, append(args, "-json")...)
		if err != nil {
			t.Fatalf("%v: %v %s", args, err, stderr)
		}
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			t.Fatalf("%v printed %q: %v", args, stdout, err)
		}
	}

	var org client.Organization
	runJSON(&org, "orgs", "create", "-name", "Acme")
	if org.ID == "" || org.Name != "Acme" {
		t.Fatalf("org = %+v", org)
	}
	out, _, err := cliRun(env, "orgs", "list")
	if err != nil || !strings.Contains(out, org.ID) || !strings.Contains(out, "Acme") {
		t.Fatalf("orgs list: %v\n%s", err, out)
	}

	var sp client.Specialist
	runJSON(&sp, "specialists", "create", "-email", "bea@example.com", "-name", "Bea", "-role", "supervisor")
	if sp.ID == "" || sp.Role != "supervisor" || sp.Password == "" {
		t.Fatalf("specialist = %+v", sp)
	}
	out, _, err = cliRun(env, "specialists", "list")
	if err != nil || !strings.Contains(out, "bea@example.com") || !strings.Contains(out, "supervisor") {
		t.Fatalf("specialists list: %v\n%s", err, out)
	}

	var key client.APIKey
	runJSON(&key, "api-keys", "create", "-name", "acme-ci", "-org", org.ID, "-scopes", "sessions")
	if key.Key == "" || key.OrganizationID != org.ID || strings.Join(key.Scopes, ",") != "sessions" {
		t.Fatalf("key = %+v", key)
	}
	acme := map[string]string{"ASSIST_URL": url, "ASSIST_API_KEY": key.Key}
	if _, _, err := cliRun(acme, "sessions", "create"); err != nil {
		t.Fatalf("the new key cannot create a session: %v", err)
	}
	if _, _, err := cliRun(acme, "api-keys", "list"); err == nil || !strings.Contains(err.Error(), "403") && !strings.Contains(err.Error(), "permission") {
		t.Fatalf("a sessions-only key listed keys: %v", err)
	}
	var mine client.APIKey
	runJSON(&mine, "api-keys", "create", "-name", "temp")
	out, _, err = cliRun(env, "api-keys", "list")
	if err != nil || !strings.Contains(out, mine.ID) || strings.Contains(out, mine.Key) {
		t.Fatalf("api-keys list: %v\n%s", err, out)
	}
	if out, _, err := cliRun(env, "api-keys", "revoke", mine.ID); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if _, _, err := cliRun(map[string]string{"ASSIST_URL": url, "ASSIST_API_KEY": mine.Key}, "sessions", "list"); err == nil {
		t.Fatal("a revoked key still works")
	}
}

func TestServeIsTheDefaultCommand(t *testing.T) {
	for _, args := range [][]string{{"serve", "-addr", "nowhere"}, {"-addr", "nowhere"}} {
		_, _, err := cliRun(nil, args...)
		if err == nil || !strings.Contains(err.Error(), "addr") {
			t.Fatalf("%v: err = %v", args, err)
		}
	}
	_, errOut, err := cliRun(nil, "serve", "-help")
	if err == nil || !strings.Contains(errOut, "ASSIST_BOOTSTRAP_API_KEY") {
		t.Fatalf("serve -help: %v\n%s", err, errOut)
	}
}
