package signaling

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

// Call quality, sampled through every call from both ends: the SFU's view of each participant
// (RTCP receiver reports from subscribers, sender reports and counters of what publishers
// send), sampled every quality-interval by this node; and each page's own view, sent as a
// `stats` message about every ten seconds. Samples are kept per session in JetStream
// (rooms.QualityLog), summarised per session (GET /v1/sessions/{id}/quality) and per day and
// specialist in /v1/analytics.

// minClientStatsInterval is the least time between two `stats` messages a page may send.
const minClientStatsInterval = 2 * time.Second

// qualitySampler samples this node's SFU and takes the pages' samples.
type qualitySampler struct {
	log      *slog.Logger
	samples  *rooms.QualityLog
	store    *rooms.Store
	sfu      *media.SFU
	interval time.Duration // 0: the SFU is not sampled

	mu         sync.Mutex
	orgs       map[string]string       // session ID → organisation, for the SFU's rooms
	prev       map[string]*peerReading // "session/participant" → the last SFU reading
	lastClient map[string]time.Time    // "session/participant" → the last page sample
}

// peerReading is one participant's SFU counters at one moment, to turn the next into rates.
type peerReading struct {
	at        time.Time
	published map[string]media.PublishedQuality // by track ID
	received  map[string]media.ReceivedQuality  // by publisher/track
}

func (s *Server) openQuality(ctx context.Context) error {
	samples, err := rooms.OpenQuality(ctx, s.bus, s.log)
	if err != nil {
		return err
	}
	s.quality = &qualitySampler{log: s.log.With("component", "quality"), samples: samples, store: s.rooms,
		sfu: s.sfu, interval: s.cfg.QualityInterval, orgs: map[string]string{},
		prev: map[string]*peerReading{}, lastClient: map[string]time.Time{}}
	return nil
}

// runQuality starts sampling the SFU until ctx ends.
func (s *Server) runQuality(ctx context.Context) {
	if s.quality.interval <= 0 {
		return
	}
	s.workers.Go(func() {
		tick := time.NewTicker(s.quality.interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				s.quality.sample(ctx, now)
			}
		}
	})
}

// follow tells the sampler which organisation a session's media room belongs to.
func (q *qualitySampler) follow(orgID, sessionID string) {
	q.mu.Lock()
	q.orgs[sessionID] = orgID
	q.mu.Unlock()
}

// sample reads every open room of the SFU and keeps one sample per participant.
func (q *qualitySampler) sample(ctx context.Context, now time.Time) {
	type pending struct {
		org    string
		sample rooms.QualitySample
	}
	var out []pending
	open := map[string]bool{}
	seen := map[string]bool{}
	for _, room := range q.sfu.OpenRooms() {
		sid := room.SessionID()
		open[sid] = true
		q.mu.Lock()
		org, ok := q.orgs[sid]
		q.mu.Unlock()
		if !ok {
			continue
		}
		roles := map[string]rooms.Role{}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		if sess, err := q.store.Session(sctx, org, sid); err == nil {
			for _, p := range sess.Participants {
				roles[p.ID] = p.Role
			}
		}
		cancel()
		for _, pq := range room.Quality() {
			key := sid + "/" + pq.ParticipantID
			seen[key] = true
			reading := newPeerReading(now, pq)
			q.mu.Lock()
			before := q.prev[key]
			q.prev[key] = reading
			q.mu.Unlock()
			if before == nil {
				continue
			}
			if smp, ok := sfuSample(before, reading, pq); ok {
				smp.SessionID, smp.ParticipantID, smp.Role = sid, pq.ParticipantID, roles[pq.ParticipantID]
				out = append(out, pending{org, smp})
			}
		}
	}
	q.mu.Lock()
	for key := range q.prev {
		if !seen[key] {
			delete(q.prev, key)
		}
	}
	for sid := range q.orgs {
		if !open[sid] {
			delete(q.orgs, sid)
		}
	}
	for key, at := range q.lastClient {
		if now.Sub(at) > time.Minute {
			delete(q.lastClient, key)
		}
	}
	q.mu.Unlock()
	for _, p := range out {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		if err := q.samples.Add(sctx, p.org, p.sample); err != nil {
			q.log.Warn("keep quality sample", "session", p.sample.SessionID, "err", err)
		}
		cancel()
	}
}

func newPeerReading(at time.Time, pq media.PeerQuality) *peerReading {
	r := &peerReading{at: at, published: map[string]media.PublishedQuality{}, received: map[string]media.ReceivedQuality{}}
	for _, t := range pq.Published {
		r.published[t.TrackID] = t
	}
	for _, t := range pq.Received {
		r.received[t.PublisherID+"/"+t.TrackID] = t
	}
	return r
}

// sfuSample turns two readings of one participant into a sample over the time between them;
// it reports false when there is nothing to say (no track lasted the whole interval).
func sfuSample(before, now *peerReading, pq media.PeerQuality) (rooms.QualitySample, bool) {
	dt := now.at.Sub(before.at).Seconds()
	smp := rooms.QualitySample{At: now.at.UTC(), Source: rooms.QualityFromSFU, IntervalMs: int(dt * 1000)}
	if dt <= 0 {
		return smp, false
	}
	kbps := func(bytes uint64) *float64 { return ptr(round2(float64(bytes) * 8 / dt / 1000)) }
	var sendKbps, sent, lost float64
	sending := false
	for _, t := range pq.Published {
		old, ok := before.published[t.TrackID]
		if !ok || t.BytesReceived < old.BytesReceived {
			continue
		}
		sending = true
		tq := rooms.TrackQuality{TrackID: t.TrackID, Kind: t.Kind, Direction: "send", Kbps: kbps(t.BytesReceived - old.BytesReceived)}
		sendKbps += *tq.Kbps
		if t.SenderReports > old.SenderReports && old.SenderReports > 0 {
			s := float64(t.SenderPackets - old.SenderPackets) // modulo 2³², as sent
			r := float64(t.PacketsAtReport - old.PacketsAtReport)
			if s > 0 && s < 1<<31 {
				tq.LossPct = ptr(round2(math.Max(0, (s-r)/s*100)))
				sent += s
				lost += math.Max(0, s-r)
			}
		}
		smp.Tracks = append(smp.Tracks, tq)
	}
	if sending {
		smp.SendKbps = ptr(round2(sendKbps))
	}
	if sent > 0 {
		smp.SendLossPct = ptr(round2(lost / sent * 100))
	}
	var receiveKbps float64
	var losses, jitters, rtts []float64
	receiving := false
	for _, t := range pq.Received {
		old, ok := before.received[t.PublisherID+"/"+t.TrackID]
		if !ok || t.BytesForwarded < old.BytesForwarded || t.Subscribers == 0 {
			continue
		}
		receiving = true
		tq := rooms.TrackQuality{TrackID: t.TrackID, Kind: t.Kind, Direction: "receive", PublisherID: t.PublisherID,
			Kbps: kbps((t.BytesForwarded - old.BytesForwarded) / uint64(t.Subscribers))}
		receiveKbps += *tq.Kbps
		if t.Reports > old.Reports { // a fresh receiver report in this interval
			tq.LossPct = ptr(round2(float64(t.FractionLost) / 256 * 100))
			tq.JitterMs = ptr(round2(t.JitterMs))
			losses, jitters = append(losses, *tq.LossPct), append(jitters, *tq.JitterMs)
			if t.RTTMs > 0 {
				tq.RTTMs = ptr(round2(t.RTTMs))
				rtts = append(rtts, t.RTTMs)
			}
		}
		smp.Tracks = append(smp.Tracks, tq)
	}
	if receiving {
		smp.ReceiveKbps = ptr(round2(receiveKbps))
	}
	smp.LossPct, smp.JitterMs, smp.RTTMs = meanOf(losses), meanOf(jitters), meanOf(rtts)
	return smp, sending || receiving
}

func ptr(v float64) *float64 { return &v }

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func meanOf(v []float64) *float64 {
	if len(v) == 0 {
		return nil
	}
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return ptr(round2(sum / float64(len(v))))
}

// allowClient reports whether a participant's page may send a sample now.
func (q *qualitySampler) allowClient(sessionID, participantID string, now time.Time) bool {
	key := sessionID + "/" + participantID
	q.mu.Lock()
	defer q.mu.Unlock()
	if last, ok := q.lastClient[key]; ok && now.Sub(last) < minClientStatsInterval {
		return false
	}
	q.lastClient[key] = now
	return true
}

// stats keeps a page's own measurements of its call.
func (p *participant) stats(ctx context.Context, m *wire.StatsSend) *wire.Error {
	if p.state != rooms.ParticipantInCall {
		return wire.Errorf(wire.CodeInvalidState, "stats are for participants in the call")
	}
	now := time.Now()
	if !p.srv.quality.allowClient(p.sessionID, p.id, now) {
		return wire.Errorf(wire.CodeRateLimited, "one stats message every %s at most", minClientStatsInterval)
	}
	smp := rooms.QualitySample{At: now.UTC(), SessionID: p.sessionID, ParticipantID: p.id, Role: p.role,
		Source: rooms.QualityFromClient, IntervalMs: m.IntervalMs, RTTMs: rounded(m.RTTMs), JitterMs: rounded(m.JitterMs),
		LossPct: rounded(m.LossPct), SendLossPct: rounded(m.SendLossPct), SendKbps: rounded(m.SendKbps),
		ReceiveKbps: rounded(m.ReceiveKbps), FrameRate: rounded(m.FrameRate)}
	if err := p.srv.quality.samples.Add(ctx, p.orgID, smp); err != nil {
		p.log.Warn("keep quality sample", "err", err)
		return wire.Errorf(wire.CodeInternal, "could not keep the stats")
	}
	return nil
}

func rounded(v *float64) *float64 {
	if v == nil {
		return nil
	}
	return ptr(round2(*v))
}

// ---- summaries ----

// qualityFigure summarises one measure over samples.
type qualityFigure struct {
	Count  int     `json:"count"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Mean   float64 `json:"mean"`
}

// qualitySummary summarises samples, measure by measure (each over the samples that have it).
type qualitySummary struct {
	Samples     int           `json:"samples"`
	RTTMs       qualityFigure `json:"rtt_ms"`
	JitterMs    qualityFigure `json:"jitter_ms"`
	LossPct     qualityFigure `json:"loss_pct"`
	SendLossPct qualityFigure `json:"send_loss_pct"`
	SendKbps    qualityFigure `json:"send_kbps"`
	ReceiveKbps qualityFigure `json:"receive_kbps"`
	FrameRate   qualityFigure `json:"frame_rate"`
}

// quantile is the q-quantile of sorted values, interpolated between the closest ranks.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

func figureOf(values []float64) qualityFigure {
	if len(values) == 0 {
		return qualityFigure{}
	}
	slices.Sort(values)
	sum := 0.0
	for _, v := range values {
		sum += v
	}
	return qualityFigure{Count: len(values), Median: round2(quantile(values, 0.5)), P90: round2(quantile(values, 0.9)),
		Mean: round2(sum / float64(len(values)))}
}

func summarizeQuality(samples []rooms.QualitySample) qualitySummary {
	var rtt, jitter, loss, sendLoss, send, receive, fps []float64
	add := func(dst *[]float64, v *float64) {
		if v != nil {
			*dst = append(*dst, *v)
		}
	}
	for _, s := range samples {
		add(&rtt, s.RTTMs)
		add(&jitter, s.JitterMs)
		add(&loss, s.LossPct)
		add(&sendLoss, s.SendLossPct)
		add(&send, s.SendKbps)
		add(&receive, s.ReceiveKbps)
		add(&fps, s.FrameRate)
	}
	return qualitySummary{Samples: len(samples), RTTMs: figureOf(rtt), JitterMs: figureOf(jitter), LossPct: figureOf(loss),
		SendLossPct: figureOf(sendLoss), SendKbps: figureOf(send), ReceiveKbps: figureOf(receive), FrameRate: figureOf(fps)}
}

// ---- GET /v1/sessions/{id}/quality ----

type sessionQuality struct {
	SessionID string                    `json:"session_id"`
	Summary   qualitySummary            `json:"summary"`
	BySource  map[string]qualitySummary `json:"by_source"` // "sfu" and "client"
	Samples   []rooms.QualitySample     `json:"samples"`
}

func (s *Server) handleSessionQuality(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	sess, err := s.rooms.Session(r.Context(), c.OrgID, r.PathValue("id"))
	if err != nil {
		s.roomsError(w, r, err)
		return
	}
	source := r.URL.Query().Get("source")
	if source != "" && source != rooms.QualityFromSFU && source != rooms.QualityFromClient {
		problem.Write(w, r, http.StatusBadRequest, "bad-parameter", "source: sfu or client")
		return
	}
	samples, err := s.quality.samples.Session(r.Context(), c.OrgID, sess.ID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if source != "" {
		samples = slices.DeleteFunc(samples, func(x rooms.QualitySample) bool { return x.Source != source })
	}
	bySource := map[string][]rooms.QualitySample{rooms.QualityFromSFU: nil, rooms.QualityFromClient: nil}
	for _, x := range samples {
		bySource[x.Source] = append(bySource[x.Source], x)
	}
	out := sessionQuality{SessionID: sess.ID, Summary: summarizeQuality(samples), BySource: map[string]qualitySummary{},
		Samples: samples}
	for src, list := range bySource {
		out.BySource[src] = summarizeQuality(list)
	}
	if out.Samples == nil {
		out.Samples = []rooms.QualitySample{}
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- quality in /v1/analytics ----

type qualityAnalytics struct {
	Overall       qualitySummary      `json:"overall"`
	PerDay        []qualityDay        `json:"per_day"` // days with samples only, by session creation
	PerSpecialist []qualitySpecialist `json:"per_specialist"`
}

type qualityDay struct {
	Date     string `json:"date"`
	Sessions int    `json:"sessions"` // sessions with samples
	qualitySummary
}

type qualitySpecialist struct {
	SpecialistID string `json:"specialist_id"`
	Name         string `json:"name"`
	Sessions     int    `json:"sessions"` // of theirs with samples
	qualitySummary
}

// analyzeQuality summarises the samples of the sessions created in [from, to): per day of
// creation, and per signed-in specialist over the sessions they took part in.
func analyzeQuality(sessions []rooms.Session, samples []rooms.QualitySample, from, to time.Time) qualityAnalytics {
	bySession := map[string][]rooms.QualitySample{}
	for _, x := range samples {
		bySession[x.SessionID] = append(bySession[x.SessionID], x)
	}
	out := qualityAnalytics{PerDay: []qualityDay{}, PerSpecialist: []qualitySpecialist{}}
	var all []rooms.QualitySample
	perDay := map[string][]rooms.QualitySample{}
	daySessions := map[string]int{}
	type staff struct {
		name     string
		sessions int
		samples  []rooms.QualitySample
	}
	bySpecialist := map[string]*staff{}
	for _, sess := range sessions {
		list := bySession[sess.ID]
		if sess.CreatedAt.Before(from) || !sess.CreatedAt.Before(to) || len(list) == 0 {
			continue
		}
		all = append(all, list...)
		day := sess.CreatedAt.UTC().Format(time.DateOnly)
		perDay[day] = append(perDay[day], list...)
		daySessions[day]++
		counted := map[string]bool{}
		for _, p := range sess.Participants {
			id, ok := strings.CutPrefix(p.Key, "specialist:")
			if p.Role != rooms.RoleSpecialist || !ok || counted[id] {
				continue
			}
			counted[id] = true
			st := bySpecialist[id]
			if st == nil {
				st = &staff{name: p.Name}
				bySpecialist[id] = st
			}
			st.sessions++
			st.samples = append(st.samples, list...)
		}
	}
	out.Overall = summarizeQuality(all)
	for day, list := range perDay {
		out.PerDay = append(out.PerDay, qualityDay{Date: day, Sessions: daySessions[day], qualitySummary: summarizeQuality(list)})
	}
	slices.SortFunc(out.PerDay, func(a, b qualityDay) int { return strings.Compare(a.Date, b.Date) })
	for id, st := range bySpecialist {
		out.PerSpecialist = append(out.PerSpecialist, qualitySpecialist{SpecialistID: id, Name: st.name,
			Sessions: st.sessions, qualitySummary: summarizeQuality(st.samples)})
	}
	slices.SortFunc(out.PerSpecialist, func(a, b qualitySpecialist) int { return strings.Compare(a.SpecialistID, b.SpecialistID) })
	return out
}

// qualityOf reads the organisation's samples for the analytics window.
func (s *Server) qualityOf(ctx context.Context, orgID string, sessions []rooms.Session, from, to time.Time) (qualityAnalytics, error) {
	samples, err := s.quality.samples.Since(ctx, orgID, from)
	if err != nil {
		return qualityAnalytics{}, err
	}
	return analyzeQuality(sessions, samples, from, to), nil
}
