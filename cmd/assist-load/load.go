package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/media/mediatest"
)

// Bounds: a load generator that cannot be turned into a flood by a typo.
const (
	maxSessions = 50
	// maxSubscribers bounds one session's customers. The node bounds them too: by default a
	// session holds 16 participants, the specialist included (its max-participants setting);
	// joins beyond the node's bound are refused, and the run goes on with those who joined.
	maxSubscribers = 200
	// maxTotalSubscribers bounds all sessions together.
	maxTotalSubscribers = 400
	maxDuration         = 10 * time.Minute
	joinTimeout         = 30 * time.Second
	// maxConsecutiveFailures failed joins in a row end a session's joining: the node is
	// refusing (a limit), and trying the rest one by one only slows the run down.
	maxConsecutiveFailures = 3
	// measureParallelism bounds concurrent GET /v1/sessions/{id}: each reads the session's
	// timeline through a JetStream consumer, and a burst of them can hit the node's consumer
	// limit (seen with 20 at once while 320 participants were connected).
	measureParallelism = 4
)

// Config is one load run.
type Config struct {
	URL         string // the node; the only host contacted
	APIKey      string
	Sessions    int
	Subscribers int           // customers per session
	Duration    time.Duration // the measurement window, after everyone has joined
	Ramp        time.Duration // session starts are spread evenly over this time
	Warmup      time.Duration // waited after everyone has joined, before the window
	PID         int           // the node's process, for its CPU time; 0: not measured
	// Video is the publishers' camera: nil plays the recorded clip (320x240, about
	// 200 kbit/s, 30 packets/s); otherwise generated frames at this bitrate and frame rate.
	Video  *mediatest.SyntheticVideo
	Logger *slog.Logger
}

func (c *Config) validate() (*url.URL, error) {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("-url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("-url %q: want http(s)://host:port", c.URL)
	case c.APIKey == "":
		return nil, errors.New("-api-key is required")
	case c.Sessions < 1 || c.Sessions > maxSessions:
		return nil, fmt.Errorf("-sessions %d: want 1..%d", c.Sessions, maxSessions)
	case c.Subscribers < 1 || c.Subscribers > maxSubscribers:
		return nil, fmt.Errorf("-subscribers %d: want 1..%d", c.Subscribers, maxSubscribers)
	case c.Sessions*c.Subscribers > maxTotalSubscribers:
		return nil, fmt.Errorf("-sessions × -subscribers = %d: want at most %d", c.Sessions*c.Subscribers, maxTotalSubscribers)
	case c.Duration <= 0 || c.Duration > maxDuration:
		return nil, fmt.Errorf("-duration %s: want up to %s", c.Duration, maxDuration)
	case c.Ramp < 0 || c.Ramp > maxDuration:
		return nil, fmt.Errorf("-ramp %s: want 0..%s", c.Ramp, maxDuration)
	case c.Warmup < 0 || c.Warmup > maxDuration:
		return nil, fmt.Errorf("-warmup %s: want 0..%s", c.Warmup, maxDuration)
	case c.Video != nil && (c.Video.Bitrate < 100_000 || c.Video.Bitrate > 20_000_000):
		return nil, fmt.Errorf("-video-bitrate %d: want 100000..20000000", c.Video.Bitrate)
	case c.Video != nil && (c.Video.FPS < 1 || c.Video.FPS > 60):
		return nil, fmt.Errorf("-video-fps %d: want 1..60", c.Video.FPS)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return u, nil
}

// session is one running session: its publisher and its subscribers.
type session struct {
	id          string
	specialist  *participant
	subscribers []*participant
	latencies   []time.Duration // per subscriber: API call to first video packet
	failures    []error
}

// run joins everyone, measures a window of cfg.Duration, and ends the sessions.
func run(ctx context.Context, cfg Config) (*Report, error) {
	base, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	api := newClient(cfg.URL, cfg.APIKey)

	sessions := make([]*session, cfg.Sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		delay := cfg.Ramp * time.Duration(i) / time.Duration(cfg.Sessions)
		wg.Go(func() {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				sessions[i] = &session{failures: []error{ctx.Err()}}
				return
			}
			sessions[i] = startSession(ctx, api, base, cfg, i)
		})
	}
	wg.Wait()
	defer func() {
		// A fresh context: the sessions are ended even after Ctrl-C.
		endCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range sessions {
			s.close(endCtx, api)
		}
	}()

	rep := &Report{Config: cfg}
	for _, s := range sessions {
		rep.JoinLatencies = append(rep.JoinLatencies, s.latencies...)
		rep.Joined += len(s.subscribers)
		rep.Failures = append(rep.Failures, s.failures...)
	}
	if rep.Joined == 0 {
		return nil, fmt.Errorf("no subscriber received video: %w", errors.Join(rep.Failures...))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	if cfg.Warmup > 0 {
		cfg.Logger.Info("everyone joined; warming up", "warmup", cfg.Warmup)
		select {
		case <-time.After(cfg.Warmup):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cfg.Logger.Info("everyone joined; measuring", "window", cfg.Duration)
	before, err := measure(ctx, api, sessions, cfg.PID)
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	after, err := measure(ctx, api, sessions, cfg.PID)
	if err != nil {
		return nil, err
	}
	rep.fill(before, after)
	for _, s := range sessions {
		for _, sub := range s.subscribers {
			rep.SubscriberVideo = append(rep.SubscriberVideo, sub.peer.Load().ReceivedPackets(webrtc.RTPCodecTypeVideo))
		}
	}
	return rep, nil
}

// startSession creates a session, joins its publishing specialist, then its customers one
// after another (each needs a fresh link, see client.newLinks), and waits until each
// receives video. A customer that fails is counted and left out.
func startSession(ctx context.Context, api *client, base *url.URL, cfg Config, n int) *session {
	s := &session{}
	fail := func(err error) *session {
		s.failures = append(s.failures, fmt.Errorf("session %d: %w", n, err))
		return s
	}
	created, err := api.createSession(ctx)
	if err != nil {
		return fail(err)
	}
	s.id = created.ID
	log := cfg.Logger.With("session", s.id)
	s.specialist, err = join(ctx, base, linkToken(created.SpecialistURL), fmt.Sprintf("specialist-%d", n), cfg.Video, true, log)
	if err != nil {
		return fail(fmt.Errorf("specialist: %w", err))
	}
	if err := s.specialist.peer.Load().Start(); err != nil {
		return fail(fmt.Errorf("specialist: %w", err))
	}
	log.Info("specialist publishing")
	consecutive := 0 // failed joins in a row
	for i := range cfg.Subscribers {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		sub, latency, err := joinSubscriber(ctx, api, base, s.id, fmt.Sprintf("customer-%d-%d", n, i), log)
		if errors.Is(err, errSessionFull) {
			return fail(fmt.Errorf("customer %d: %w; the node's max-participants setting bounds a session (%d subscribers joined)", i, err, len(s.subscribers)))
		}
		if err != nil {
			fail(fmt.Errorf("customer %d: %w", i, err))
			if consecutive++; consecutive == maxConsecutiveFailures {
				return fail(fmt.Errorf("%d joins in a row failed: no more customers for this session (a limit of the node's? see its max-participants, max-sockets-per-ip and max-sockets-per-session)", consecutive))
			}
			continue
		}
		consecutive = 0
		log.Info("subscriber receiving video", "customer", i, "join_latency", latency)
		s.subscribers = append(s.subscribers, sub)
		s.latencies = append(s.latencies, latency)
	}
	return s
}

// joinSubscriber is one customer from the API call that mints their link to their first
// video packet: socket, join, waiting room, admission, negotiation, ICE, DTLS, first RTP.
func joinSubscriber(ctx context.Context, api *client, base *url.URL, sessionID, name string, log *slog.Logger) (*participant, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	start := time.Now()
	links, err := api.newLinks(ctx, sessionID)
	if err != nil {
		return nil, 0, err
	}
	p, err := join(ctx, base, linkToken(links.CustomerURL), name, nil, false, log)
	if err != nil {
		return nil, 0, err
	}
	err = p.waitAdmitted(ctx)
	if err == nil {
		err = p.peer.Load().Start()
	}
	if err == nil {
		err = p.peer.Load().WaitReceived(ctx, webrtc.RTPCodecTypeVideo, 1)
	}
	if err != nil {
		p.close()
		return nil, 0, err
	}
	return p, time.Since(start), nil
}

// close ends the session through the API and hangs up everyone.
func (s *session) close(ctx context.Context, api *client) {
	if s.id != "" {
		_ = api.endSession(ctx, s.id)
	}
	for _, p := range s.subscribers {
		p.close()
	}
	if s.specialist != nil {
		s.specialist.close()
	}
}

// sample is the counters at one instant.
type sample struct {
	at               time.Time
	publishedPackets uint64 // the node's counters, all tracks of all sessions
	forwardedPackets uint64
	forwardedBytes   uint64
	receivedPackets  uint64   // what the subscribers counted
	published        []uint64 // per session, to find sessions whose media stopped
	nodeCPU, ownCPU  time.Duration
	nodeCPUErr       error
	udpDrops         int64 // this machine's UDP datagrams dropped for full buffers; -1: unknown
}

// measure reads every session's counters, a few at a time (so that the samples of many
// sessions are close together in time, without a burst of requests), what its subscribers
// received, and the CPU times.
func measure(ctx context.Context, api *client, sessions []*session, pid int) (sample, error) {
	smp := sample{at: time.Now(), published: make([]uint64, len(sessions))}
	parts := make([]sample, len(sessions))
	errs := make([]error, len(sessions))
	var wg sync.WaitGroup
	slots := make(chan struct{}, measureParallelism)
	for i, s := range sessions {
		if len(s.subscribers) == 0 {
			continue
		}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			got, err := api.session(ctx, s.id)
			if err != nil {
				errs[i] = err
				return
			}
			for _, sub := range s.subscribers {
				peer := sub.peer.Load()
				parts[i].receivedPackets += peer.ReceivedPackets(webrtc.RTPCodecTypeVideo) + peer.ReceivedPackets(webrtc.RTPCodecTypeAudio)
			}
			for _, p := range got.Participants {
				for _, t := range p.Tracks {
					parts[i].publishedPackets += t.PacketsReceived
					parts[i].forwardedPackets += t.PacketsForwarded
					parts[i].forwardedBytes += t.BytesForwarded
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return smp, err
	}
	for i, p := range parts {
		smp.published[i] = p.publishedPackets
		smp.publishedPackets += p.publishedPackets
		smp.forwardedPackets += p.forwardedPackets
		smp.forwardedBytes += p.forwardedBytes
		smp.receivedPackets += p.receivedPackets
	}
	smp.ownCPU = selfCPU()
	smp.udpDrops = udpDrops()
	if pid > 0 {
		smp.nodeCPU, smp.nodeCPUErr = processCPU(pid)
	}
	return smp, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
