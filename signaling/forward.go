package signaling

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/problem"
)

// Forwarded media calls: an API call that acts on a session's SFU room (start or stop a
// recording, read the room's track counters, free the room when the session ends) may reach any
// node; the room lives on the session's media node. The node that took the call authenticates
// and authorizes the caller, writes the audit event and keeps the Idempotency-Key's reply, as
// for any call; only the part that needs the room is sent to the media node, as a POST to its
// internal /internal/media with an Assist-Internal header: this node's id, a time and an
// HMAC-SHA256 under the cluster secret (the relay's) of both and of the body's digest. The body
// names the media node it is meant for, the operation, the caller's organisation and the
// session. The media node trusts nothing else: a request whose header does not verify is
// refused with 403, and it never forwards again.

const (
	internalHeader = "Assist-Internal"
	internalRoute  = "/internal/media"
	// forwardTimeout bounds one forwarded call; stopping a recording finishes its last files.
	forwardTimeout = 20 * time.Second
	// statsTimeout bounds asking for counters: a session view without them is better than none.
	statsTimeout  = 3 * time.Second
	maxMediaCall  = 64 << 10
	maxMediaReply = 4 << 20
)

// Operations a node asks a session's media node to do.
const (
	mediaStartRecording = "start-recording"
	mediaStopRecording  = "stop-recording"
	mediaStats          = "stats"
	mediaClose          = "close"
	mediaAutoRecord     = "auto-record"
)

// mediaCall is the body of a forwarded call.
type mediaCall struct {
	To          string   `json:"to"` // the media node it is meant for
	Op          string   `json:"op"`
	OrgID       string   `json:"org_id"`
	SessionIDs  []string `json:"session_ids"` // one, or several for stats
	RecordingID string   `json:"recording_id,omitempty"`
	Caller      string   `json:"caller,omitempty"` // who asked, for the media node's logs
	Nonce       string   `json:"nonce"`            // makes every call's signature unique
}

// replayGuard remembers the signatures of the internal calls served within the allowed skew:
// a call captured on the way is not served twice.
type replayGuard struct {
	mu    sync.Mutex
	seen  map[string]time.Time // signature → when it stops being acceptable anyway
	sweep time.Time            // when to forget the expired ones next
}

// first reports whether sig is new, and remembers it.
func (g *replayGuard) first(sig string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]time.Time{}
	}
	if now.After(g.sweep) {
		for k, until := range g.seen {
			if now.After(until) {
				delete(g.seen, k)
			}
		}
		g.sweep = now.Add(relayMaxSkew)
	}
	if _, ok := g.seen[sig]; ok {
		return false
	}
	g.seen[sig] = now.Add(2 * relayMaxSkew)
	return true
}

// mediaStatsReply is the media node's counters by session.
type mediaStatsReply struct {
	Sessions map[string][]media.ParticipantStats `json:"sessions"`
}

func (c *cluster) internalMAC(node, ts string, body []byte) string {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte("assist-internal\n" + node + "\n" + ts + "\n" + hex.EncodeToString(sum[:])))
	return hex.EncodeToString(m.Sum(nil))
}

// signInternal makes the Assist-Internal header for a body this node sends.
func (c *cluster) signInternal(body []byte, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return url.Values{"node": {c.self.ID}, "ts": {ts}, "sig": {c.internalMAC(c.self.ID, ts, body)}}.Encode()
}

// verifyInternal checks an Assist-Internal header against the body; it returns the sender and
// the signature.
func (c *cluster) verifyInternal(header string, body []byte, now time.Time) (node, sig string, ok bool) {
	v, err := url.ParseQuery(header)
	if err != nil {
		return "", "", false
	}
	node, ts, sig := v.Get("node"), v.Get("ts"), v.Get("sig")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || node == "" {
		return "", "", false
	}
	if d := now.Sub(time.Unix(sec, 0)); d > relayMaxSkew || d < -relayMaxSkew {
		return "", "", false
	}
	if !hmac.Equal([]byte(sig), []byte(c.internalMAC(node, ts, body))) {
		return "", "", false
	}
	return node, sig, true
}

// remoteMediaNode is the session's media node when it is another live node.
func (s *Server) remoteMediaNode(mediaNode string) (rooms.Node, bool) {
	if s.cluster == nil || mediaNode == "" || mediaNode == s.cluster.self.ID || !s.cluster.liveNode(mediaNode) {
		return rooms.Node{}, false
	}
	return s.cluster.node(mediaNode)
}

// errForward: the media node could not be asked.
var errForward = errors.New("the node carrying the session did not answer")

// callMediaNode sends one call to a media node and returns its status and body.
func (s *Server) callMediaNode(ctx context.Context, node rooms.Node, call mediaCall) (int, []byte, error) {
	call.To = node.ID
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	call.Nonce = hex.EncodeToString(nonce)
	body, err := json.Marshal(call)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, node.URL+internalRoute, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(internalHeader, s.cluster.signInternal(body, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errForward, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxMediaReply))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errForward, err)
	}
	return resp.StatusCode, reply, nil
}

// forwardToMediaNode sends the call and passes the media node's reply (a view or a problem)
// to the client; it reports whether the call succeeded, so the caller audits only then.
func (s *Server) forwardToMediaNode(w http.ResponseWriter, r *http.Request, node rooms.Node, call mediaCall) bool {
	c := callerOf(r)
	call.OrgID, call.Caller = c.OrgID, c.SpecialistID
	if call.Caller == "" {
		call.Caller = "key:" + c.KeyName
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	defer cancel()
	status, body, err := s.callMediaNode(ctx, node, call)
	if err != nil {
		s.log.Warn("forwarding to the session's node", "node", node.ID, "op", call.Op, "err", err)
		problem.Write(w, r, http.StatusServiceUnavailable, "node-unreachable", errRoomNodeUnreachable.Error()+": try again")
		return false
	}
	ctype := "application/json"
	if status >= 300 {
		ctype = "application/problem+json"
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status < 300
}

// forwardStartRecording starts the recording on the session's media node when that is another
// node (placing the session first, so that the room and the recording are on the node where the
// participants' media will be). It reports whether it answered the client.
func (s *Server) forwardStartRecording(w http.ResponseWriter, r *http.Request, sess *rooms.Session) bool {
	if s.cluster == nil {
		return false
	}
	nodeID, err := s.placeSession(r.Context(), sess.OrgID, sess.ID)
	if err != nil {
		return false
	}
	node, ok := s.remoteMediaNode(nodeID)
	if !ok {
		return false
	}
	var v recordingView
	if s.forwardToMediaNodeView(w, r, node, mediaCall{Op: mediaStartRecording, SessionIDs: []string{sess.ID}}, &v) {
		s.record(r.Context(), s.auditFromRequest(r, audit.ActionRecordingStart, sess.ID, v.ID))
	}
	return true
}

// forwardStopRecording stops a recording that is not this node's on the session's media node.
func (s *Server) forwardStopRecording(w http.ResponseWriter, r *http.Request) bool {
	c := callerOf(r)
	sess, err := s.rooms.Session(r.Context(), c.OrgID, r.PathValue("id"))
	if err != nil {
		return false
	}
	node, ok := s.remoteMediaNode(sess.MediaNode)
	if !ok {
		return false
	}
	id := r.PathValue("rid")
	var v recordingView
	if s.forwardToMediaNodeView(w, r, node, mediaCall{Op: mediaStopRecording, SessionIDs: []string{sess.ID}, RecordingID: id}, &v) {
		s.record(r.Context(), s.auditFromRequest(r, audit.ActionRecordingStop, sess.ID, id))
	}
	return true
}

// forwardToMediaNodeView is forwardToMediaNode that also decodes a successful reply.
func (s *Server) forwardToMediaNodeView(w http.ResponseWriter, r *http.Request, node rooms.Node, call mediaCall, v any) bool {
	rec := &replyRecorder{header: http.Header{}}
	ok := s.forwardToMediaNode(rec, r, node, call)
	for k, vs := range rec.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
	return ok && json.Unmarshal(rec.body.Bytes(), v) == nil
}

// replyRecorder keeps a reply to look at before it is passed on.
type replyRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rr *replyRecorder) Header() http.Header         { return rr.header }
func (rr *replyRecorder) WriteHeader(status int)      { rr.status = status }
func (rr *replyRecorder) Write(b []byte) (int, error) { return rr.body.Write(b) }

// fillRemoteTracks puts the media nodes' track counters into the views of sessions carried by
// other nodes (one call per node; a node that does not answer leaves the counters empty).
func (s *Server) fillRemoteTracks(ctx context.Context, sessions []rooms.Session, views []api.Session) {
	if s.cluster == nil {
		return
	}
	byNode := map[string][]int{}
	for i := range sessions {
		if _, ok := s.remoteMediaNode(sessions[i].MediaNode); ok && sessions[i].State != rooms.SessionEnded {
			byNode[sessions[i].MediaNode] = append(byNode[sessions[i].MediaNode], i)
		}
	}
	if len(byNode) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for nodeID, idx := range byNode {
		node, _ := s.remoteMediaNode(nodeID)
		wg.Go(func() {
			call := mediaCall{Op: mediaStats, OrgID: sessions[idx[0]].OrgID}
			for _, i := range idx {
				call.SessionIDs = append(call.SessionIDs, sessions[i].ID)
			}
			status, body, err := s.callMediaNode(ctx, node, call)
			var reply mediaStatsReply
			if err == nil && status == http.StatusOK {
				err = json.Unmarshal(body, &reply)
			} else if err == nil {
				err = fmt.Errorf("status %d", status)
			}
			if err != nil {
				s.log.Warn("reading track counters from the session's node", "node", nodeID, "err", err)
				return
			}
			for _, i := range idx { // each index belongs to one goroutine
				setTracks(&views[i], reply.Sessions[sessions[i].ID])
			}
		})
	}
	wg.Wait()
}

// setTracks puts one room's counters into a session view.
func setTracks(v *api.Session, stats []media.ParticipantStats) {
	byID := map[string][]media.TrackStats{}
	for _, ps := range stats {
		byID[ps.ParticipantID] = ps.Tracks
	}
	for j := range v.Participants {
		p := &v.Participants[j]
		tracks := byID[p.ID]
		if len(tracks) == 0 {
			continue
		}
		p.Tracks = make([]api.Track, 0, len(tracks))
		for _, t := range tracks {
			p.Tracks = append(p.Tracks, api.Track{ID: t.ID, Kind: t.Kind, Codec: t.Codec,
				PacketsReceived: t.PacketsReceived, BytesReceived: t.BytesReceived,
				PacketsForwarded: t.PacketsForwarded, BytesForwarded: t.BytesForwarded})
		}
	}
}

// closeRemoteMedia asks the session's media node, when it is another, to free the ended
// session's room and stop its recordings there; it runs in the background.
func (s *Server) closeRemoteMedia(orgID, sessionID string) {
	if s.cluster == nil {
		return
	}
	s.workers.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
		defer cancel()
		sess, err := s.rooms.Session(ctx, orgID, sessionID)
		if err != nil {
			return
		}
		node, ok := s.remoteMediaNode(sess.MediaNode)
		if !ok {
			return
		}
		status, _, err := s.callMediaNode(ctx, node, mediaCall{Op: mediaClose, OrgID: orgID, SessionIDs: []string{sessionID}, Caller: "node:" + s.cluster.self.ID})
		if err != nil || status >= 300 {
			s.log.Warn("closing the session's media on its node", "node", node.ID, "session", sessionID, "status", status, "err", err)
		}
	})
}

// forwardAutoRecord asks the session's media node, when it is another, to apply the
// organisation's automatic recording there (an admission from the console's staff socket can
// happen on any node); it reports whether it did.
func (s *Server) forwardAutoRecord(ctx context.Context, orgID, sessionID string) bool {
	if s.cluster == nil {
		return false
	}
	sess, err := s.rooms.Session(ctx, orgID, sessionID)
	if err != nil {
		return false
	}
	node, ok := s.remoteMediaNode(sess.MediaNode)
	if !ok {
		return false
	}
	status, _, err := s.callMediaNode(ctx, node, mediaCall{Op: mediaAutoRecord, OrgID: orgID, SessionIDs: []string{sessionID}, Caller: "node:" + s.cluster.self.ID})
	if err != nil || status >= 300 {
		s.log.Warn("automatic recording on the session's node", "node", node.ID, "session", sessionID, "status", status, "err", err)
	}
	return true
}

// handleInternalMedia runs a call another node forwarded (see the top of this file).
func (s *Server) handleInternalMedia(w http.ResponseWriter, r *http.Request) {
	if s.cluster == nil {
		problem.Write(w, r, http.StatusNotFound, "not-found", "this node is not in a cluster")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMediaCall))
	if err != nil {
		problem.Write(w, r, http.StatusRequestEntityTooLarge, "too-large", "request body is too large")
		return
	}
	now := time.Now()
	from, sig, ok := s.cluster.verifyInternal(r.Header.Get(internalHeader), body, now)
	if !ok {
		s.log.Warn("internal call did not verify", "remote", r.RemoteAddr)
		problem.Write(w, r, http.StatusForbidden, "forbidden", "not signed by a node of this cluster")
		return
	}
	if !s.cluster.internalSeen.first(sig, now) {
		s.log.Warn("internal call replayed", "remote", r.RemoteAddr, "from_node", from)
		problem.Write(w, r, http.StatusForbidden, "forbidden", "this call was already served")
		return
	}
	var call mediaCall
	if err := json.Unmarshal(body, &call); err != nil || call.OrgID == "" || len(call.SessionIDs) == 0 {
		problem.Write(w, r, http.StatusBadRequest, "bad-request", "a malformed internal call")
		return
	}
	if call.To != s.cluster.self.ID {
		problem.Write(w, r, http.StatusMisdirectedRequest, "misdirected", "the call is meant for another node")
		return
	}
	log := s.log.With("from_node", from, "op", call.Op, "caller", call.Caller, "session", call.SessionIDs[0])
	sessionID := call.SessionIDs[0]
	switch call.Op {
	case mediaStats:
		out := mediaStatsReply{Sessions: map[string][]media.ParticipantStats{}}
		for _, id := range call.SessionIDs {
			out.Sessions[id] = s.sfu.Stats(id)
		}
		writeJSON(w, http.StatusOK, out)
	case mediaStartRecording:
		sess, err := s.rooms.Session(r.Context(), call.OrgID, sessionID)
		if err != nil {
			s.roomsError(w, r, err)
			return
		}
		if sess.MediaNode != "" && sess.MediaNode != s.cluster.self.ID {
			problem.Write(w, r, http.StatusConflict, "session-moved", "the session moved to another node: try again")
			return
		}
		id, err := s.startRecording(r.Context(), sess.OrgID, sess.ID)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		log.Info("started a forwarded recording", "recording", id)
		writeJSON(w, http.StatusCreated, recordingView{ID: id, SessionID: sess.ID, State: "recording",
			StartedAt: time.Now().UTC(), Segments: []recordingSegment{}, UploadsBehind: s.recorder.Backlog()})
	case mediaStopRecording:
		s.recordingMu.Lock()
		owner, ok := s.recordingOwners[call.RecordingID]
		s.recordingMu.Unlock()
		if !ok || owner != (recordingOwner{call.OrgID, sessionID}) {
			problem.Write(w, r, http.StatusNotFound, "not-found", "no such recording running on this session")
			return
		}
		m, err := s.stopRecording(r.Context(), owner, call.RecordingID)
		if err != nil {
			problem.Write(w, r, http.StatusNotFound, "not-found", "no such recording running")
			return
		}
		writeJSON(w, http.StatusOK, s.recordingView(m))
	case mediaAutoRecord:
		s.autoRecord(call.OrgID, sessionID) // applies the policy here, once per session
		w.WriteHeader(http.StatusAccepted)
	case mediaClose:
		s.stopRecordings(call.OrgID, sessionID)
		s.sfu.CloseRoom(sessionID)
		if s.turn != nil {
			s.turn.RevokeSession(call.OrgID + "." + sessionID)
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		problem.Write(w, r, http.StatusBadRequest, "bad-request", "unknown internal operation")
	}
}
