// Command assist runs an Assist node: the API, the console and customer pages, signaling, the
// SFU, and (by default) an embedded NATS server and object store under one data directory.
// Its subcommands (assist help) manage a running node through the REST API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/assist-video/assist/media/procs"
	"github.com/assist-video/assist/signaling"
	"github.com/assist-video/assist/signaling/config"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, config.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "assist:", err)
		os.Exit(1)
	}
}

// run runs the node (no command, or "serve") or one of the admin commands (see cli.go).
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch word := args[0]; {
		case word == "serve":
			return serve(ctx, args[1:], getenv, stdout, stderr)
		case word == "help":
			printUsage(stdout)
			return nil
		case isCommandGroup(word):
			return runCommand(ctx, args, getenv, stdout, stderr)
		default:
			return fmt.Errorf("unknown command %q (see assist help)", word)
		}
	}
	return serve(ctx, args, getenv, stdout, stderr)
}

// serve runs the node until ctx is done.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if cfg.AdaptiveProcs && getenv("GOMAXPROCS") == "" {
		adaptCtx, stopAdapting := context.WithCancel(ctx)
		defer stopAdapting()
		go procs.Adapt(adaptCtx, procs.Options{Log: log})
	}

	srv, err := signaling.NewServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	printWelcome(stdout, srv)
	return srv.Run(ctx)
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func printWelcome(w io.Writer, srv *signaling.Server) {
	b := srv.Bootstrap()
	fmt.Fprintf(w, "\nAssist is running.\n\n  Console:  %s/console/\n  Sign in:  %s\n", srv.URL(), b.Email)
	if b.Created {
		fmt.Fprintf(w, "  Password: %s\n  API key:  %s\n\n  These were created on first start and are shown only now: keep them.\n",
			b.Password, b.APIKey)
	} else {
		fmt.Fprintf(w, "  (password and API key were printed on first start)\n")
	}
	fmt.Fprintf(w, "\n  Create a session:\n    curl -X POST -H 'Authorization: Bearer <API key>' %s/v1/sessions\n\n", srv.URL())
}
