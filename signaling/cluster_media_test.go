package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/recording/store/storetest"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/rooms/audit"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

// startClusterNodeWith is startClusterNode with a change to the node's configuration.
func startClusterNodeWith(t *testing.T, nc *natsCluster, id string, change func(*config.Config)) *clusterNode {
	t.Helper()
	cfg := testConfig(t)
	cfg.NodeID = id
	cfg.NATSURL = strings.Join(nc.urls, ",")
	cfg.NATSReplicas = 3
	change(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("ASSIST_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", id)
	ctx, cancel := context.WithCancel(context.Background())
	nctx, ncancel := context.WithTimeout(ctx, 60*time.Second)
	defer ncancel()
	srv, err := NewServer(nctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("NewServer %s: %v", id, err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run %s: %v", id, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("node %s did not shut down within 30s", id)
			}
		})
	}
	t.Cleanup(stop)
	return &clusterNode{testServer: &testServer{Server: srv, URL: srv.URL(), APIKey: testAPIKey}, stop: stop}
}

// doWithKey is ts.do with an Idempotency-Key.
func doWithKey(t *testing.T, ts *testServer, method, path, key string, out any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+ts.APIKey)
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}
	return resp
}

// TestAPICallsReachTheSessionsMediaNode: with a session whose media lives on n2, a recording
// started through n1's API records the call on n2 and is stopped through n3; the session read
// through n1 shows n2's counters; the internal route refuses calls not signed by the cluster.
func TestAPICallsReachTheSessionsMediaNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three NATS servers, three Assist nodes and MinIO")
	}
	s3 := storetest.StartMinIO(t) // one object store for the whole cluster
	nc := startNATSCluster(t, 3)
	nodes := map[string]*clusterNode{}
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes[id] = startClusterNodeWith(t, nc, id, func(cfg *config.Config) {
			cfg.S3Endpoint, cfg.S3AccessKey, cfg.S3SecretKey, cfg.S3Bucket, cfg.S3Region = s3.Endpoint, s3.AccessKey, s3.SecretKey, s3.Bucket, s3.Region
		})
	}
	for id, n := range nodes {
		eventually(t, 20*time.Second, id+" sees all three nodes", func() bool { return n.sees("n1", "n2", "n3") })
	}
	n1, n2, n3 := nodes["n1"].testServer, nodes["n2"].testServer, nodes["n3"].testServer

	s := n1.createSession(t)
	// The customer reaches n2 first (an idle tie goes to the node asking): the session is n2's.
	customer := joinCallEventually(t, n2, linkToken(s.CustomerURL), "Ann")
	customer.expect(wire.TypeWaiting, nil)
	if placed, _ := sessionOn(n1, s.ID); placed.MediaNode != "n2" {
		t.Fatalf("session placed on %q, want n2", placed.MediaNode)
	}
	specialist := joinCallEventually(t, n1, linkToken(s.SpecialistURL), "Sam") // relayed to n2
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	exchangeMedia(t, customer.callPeer, specialist.callPeer)

	t.Run("the session read through another node shows the media node's counters", func(t *testing.T) {
		eventually(t, 10*time.Second, "n1 shows forwarded packets for both participants", func() bool {
			got, ok := sessionOn(n1, s.ID)
			if !ok || len(got.Participants) < 2 {
				return false
			}
			for _, p := range got.Participants {
				if len(p.Tracks) == 0 || p.Tracks[0].PacketsForwarded == 0 || p.Tracks[0].PacketsReceived == 0 {
					return false
				}
			}
			return true
		})
		if got := nodes["n1"].sfu.Stats(s.ID); len(got) != 0 {
			t.Fatalf("n1 has a room of its own for the session: %+v", got)
		}
		var list struct {
			Data []struct {
				ID           string `json:"id"`
				Participants []struct {
					Tracks []struct {
						PacketsForwarded uint64 `json:"packets_forwarded"`
					} `json:"tracks"`
				} `json:"participants"`
			} `json:"data"`
		}
		n3.do(t, "GET", "/v1/sessions?limit=100", n3.APIKey, nil, &list)
		found := false
		for _, v := range list.Data {
			if v.ID == s.ID {
				found = true
				for _, p := range v.Participants {
					if len(p.Tracks) == 0 || p.Tracks[0].PacketsForwarded == 0 {
						t.Errorf("the list on n3 lacks n2's counters: %+v", v)
					}
				}
			}
		}
		if !found {
			t.Fatalf("session %s not in n3's list", s.ID)
		}
	})

	t.Run("a recording started on n1 and stopped on n3 records the call on n2", func(t *testing.T) {
		var rec, again recordingView
		path := "/v1/sessions/" + s.ID + "/recordings"
		if resp := doWithKey(t, n1, "POST", path, "start-"+s.ID, &rec); resp.StatusCode != 201 || rec.ID == "" {
			t.Fatalf("start through n1: %d %+v", resp.StatusCode, rec)
		}
		resp := doWithKey(t, n1, "POST", path, "start-"+s.ID, &again)
		if resp.StatusCode != 201 || again.ID != rec.ID || resp.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("the repeated start was not replayed: %d %+v %v", resp.StatusCode, again, resp.Header)
		}
		if got := nodes["n2"].activeRecordingsAnyOrg(s.ID); len(got) != 1 || got[0] != rec.ID {
			t.Fatalf("n2 runs recordings %v, want just %s", got, rec.ID)
		}
		if got := nodes["n1"].activeRecordingsAnyOrg(s.ID); len(got) != 0 {
			t.Fatalf("n1 runs recordings %v, want none", got)
		}
		var indicator wire.Recording
		for !indicator.Active {
			customer.expect(wire.TypeRecording, &indicator)
		}
		// Record about four seconds of the customer's video, as the specialist receives it.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		before := specialist.peer.ReceivedPackets(webrtc.RTPCodecTypeVideo)
		if err := specialist.peer.WaitReceived(ctx, webrtc.RTPCodecTypeVideo, before+150); err != nil {
			t.Fatal(err)
		}
		var stopped recordingView
		if resp := n3.do(t, "POST", path+"/"+rec.ID+"/stop", n3.APIKey, nil, &stopped); resp.StatusCode != 200 || stopped.ID != rec.ID {
			t.Fatalf("stop through n3: %d %+v", resp.StatusCode, stopped)
		}
		if got := nodes["n2"].activeRecordingsAnyOrg(s.ID); len(got) != 0 {
			t.Fatalf("n2 still runs %v", got)
		}
		if resp := n3.do(t, "POST", path+"/"+rec.ID+"/stop", n3.APIKey, nil, nil); resp.StatusCode != 404 {
			t.Fatalf("stopping again: %d, want 404", resp.StatusCode)
		}

		var list struct {
			Data []recordingView `json:"data"`
		}
		eventually(t, 30*time.Second, "the manifest is complete in storage", func() bool {
			n1.do(t, "GET", path, n1.APIKey, nil, &list)
			return len(list.Data) == 1 && list.Data[0].State == "complete"
		})
		got := list.Data[0]
		people := map[string]bool{}
		for _, seg := range got.Segments {
			if seg.Size > 0 {
				people[seg.ParticipantID] = true
			}
		}
		if got.ID != rec.ID || !people[customer.id] || !people[specialist.id] {
			t.Fatalf("recording = %+v, want segments of %s and %s", got, customer.id, specialist.id)
		}

		// Audited once each, by the node that took the call.
		eventually(t, 15*time.Second, "one start and one stop event for the recording", func() bool {
			starts, ok1 := auditCount(n1, audit.ActionRecordingStart, rec.ID)
			stops, ok2 := auditCount(n1, audit.ActionRecordingStop, rec.ID)
			if starts > 1 || stops > 1 {
				t.Fatalf("%d start and %d stop events for %s, want 1 each", starts, stops, rec.ID)
			}
			return ok1 && ok2 && starts == 1 && stops == 1
		})
	})

	t.Run("an automatic recording asked for on n1 runs on n2", func(t *testing.T) {
		n1.setPolicy(t, map[string]any{"auto_record": true})
		// What an admission from the console's staff socket on n1 does (orgqueue.go).
		nodes["n1"].autoRecord(s.OrganizationID, s.ID)
		eventually(t, 15*time.Second, "n2 runs the automatic recording", func() bool {
			return len(nodes["n2"].activeRecordingsAnyOrg(s.ID)) == 1
		})
		if got := nodes["n1"].activeRecordingsAnyOrg(s.ID); len(got) != 0 {
			t.Fatalf("n1 runs recordings %v, want none", got)
		}
		id := nodes["n2"].activeRecordingsAnyOrg(s.ID)[0]
		if resp := n1.do(t, "POST", "/v1/sessions/"+s.ID+"/recordings/"+id+"/stop", n1.APIKey, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("stop through n1: %d", resp.StatusCode)
		}
	})

	t.Run("the internal route refuses calls the cluster did not sign", func(t *testing.T) {
		call := mediaCall{To: "n2", Op: mediaStats, OrgID: "any", SessionIDs: []string{s.ID}}
		body, _ := json.Marshal(call)
		forger := &cluster{self: rooms.Node{ID: "n1"}, secret: []byte("not the cluster's secret")}
		signed := nodes["n1"].cluster.signInternal(body, time.Now())
		tampered, _ := json.Marshal(mediaCall{To: "n2", Op: mediaClose, OrgID: "any", SessionIDs: []string{s.ID}})
		for _, tc := range []struct {
			name   string
			header string
			body   []byte
			want   int
		}{
			{"a call signed by a node of the cluster is served", signed, body, 200},
			{"the same call again is refused as a replay", signed, body, 403},
			{"a call without the header is refused", "", body, 403},
			{"a call signed with another secret is refused", forger.signInternal(body, time.Now()), body, 403},
			{"a signed header on another body is refused", signed, tampered, 403},
			{"an old signature is refused", nodes["n1"].cluster.signInternal(body, time.Now().Add(-2*time.Minute)), body, 403},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest("POST", n2.URL+internalRoute, bytes.NewReader(tc.body))
				if tc.header != "" {
					req.Header.Set(internalHeader, tc.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
				}
			})
		}
		if got := nodes["n2"].sfu.Stats(s.ID); len(got) != 2 {
			t.Fatalf("the room on n2 has %d participants after the forged calls, want 2", len(got))
		}
	})

	t.Run("ending the session through n3 frees its room on n2", func(t *testing.T) {
		if resp := n3.do(t, "POST", "/v1/sessions/"+s.ID+"/end", n3.APIKey, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("end through n3: %d", resp.StatusCode)
		}
		eventually(t, 15*time.Second, "n2 has no room left", func() bool { return nodes["n2"].sfu.Rooms() == 0 })
	})
}

// auditCount counts the organisation's audit events of an action on a target; ok is false when
// the trail did not answer (the query is retried).
func auditCount(ts *testServer, action, target string) (n int, ok bool) {
	req, _ := http.NewRequest("GET", ts.URL+"/v1/audit-events?action="+action, nil)
	req.Header.Set("Authorization", "Bearer "+ts.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var page struct {
		Data []audit.Event `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&page) != nil {
		return 0, false
	}
	for _, e := range page.Data {
		if e.Target == target {
			n++
		}
	}
	return n, true
}

// activeRecordingsAnyOrg lists the recordings of a session running on this node.
func (s *Server) activeRecordingsAnyOrg(sessionID string) []string {
	s.recordingMu.Lock()
	defer s.recordingMu.Unlock()
	var ids []string
	for id, owner := range s.recordingOwners {
		if owner.sessionID == sessionID {
			ids = append(ids, id)
		}
	}
	return ids
}
