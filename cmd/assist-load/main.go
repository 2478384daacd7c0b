// Command assist-load drives a running Assist node through its public API the way real
// participants do, and reports what the SFU carried and what it cost.
//
// Each session has one publishing specialist (a Go Pion peer sending a real VP8 camera and
// Opus microphone, or with -video synthetic a generated camera of any bitrate, e.g. a
// 720p-like 2.5 Mbit/s) and N customers who join through their own link, wait, are admitted by
// the specialist over the signaling socket, and then only subscribe: they publish nothing.
// After everyone has joined, it measures a steady-state window: forwarded packets and bits
// per second (the node's own track counters, GET /v1/sessions/{id}), what the subscribers
// received, the join latency of each subscriber (API call to first video packet) and, given
// -pid, the node's CPU time per forwarded packet.
//
//	assist-load -url http://127.0.0.1:8080 -api-key ak_... -sessions 1 -subscribers 10 -pid 1234
//
// A session holds as many participants as the node's max-participants setting allows (16 by
// default); start the node with a larger one for sessions of up to 200 subscribers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/assist-video/assist/media/mediatest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "assist-load:", err)
		}
		os.Exit(2)
	}
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("assist-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var verbose bool
	var video string
	var videoBitrate, videoFPS int
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the Assist node (the only host contacted)")
	fs.StringVar(&cfg.APIKey, "api-key", os.Getenv("ASSIST_API_KEY"), "API key (ak_...; default $ASSIST_API_KEY)")
	fs.IntVar(&cfg.Sessions, "sessions", 1, fmt.Sprintf("sessions to run at once (1..%d)", maxSessions))
	fs.IntVar(&cfg.Subscribers, "subscribers", 1, fmt.Sprintf("subscribing customers per session (1..%d)", maxSubscribers))
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measurement window once everyone has joined (max 10m)")
	fs.DurationVar(&cfg.Ramp, "ramp", 0, "spread the sessions' starts over this time")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "wait this long once everyone has joined before measuring (let joins' keyframes and the node's scheduler sizing settle; max 10m)")
	fs.IntVar(&cfg.PID, "pid", 0, "process ID of the node, to measure its CPU time from /proc (same machine only)")
	fs.StringVar(&video, "video", "clip", "publishers' camera: clip (recorded 320x240, ~200 kbit/s) or synthetic (generated frames at -video-bitrate)")
	fs.IntVar(&videoBitrate, "video-bitrate", 2_500_000, "bits per second of -video synthetic (2.5 Mbit/s at 30 fps is a 720p camera: ~280 packets/s)")
	fs.IntVar(&videoFPS, "video-fps", 30, "frames per second of -video synthetic")
	fs.BoolVar(&verbose, "v", false, "log progress to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch video {
	case "clip":
	case "synthetic":
		cfg.Video = &mediatest.SyntheticVideo{Bitrate: videoBitrate, FPS: videoFPS}
	default:
		return fmt.Errorf("-video %q: want clip or synthetic", video)
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	rep, err := run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Print(stdout)
	return nil
}
