package signaling

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/recording/store/storetest"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/wire"
)

// TestStorageRegionsKeepAnOrganisationsObjectsInItsRegion runs a node on two real MinIO
// servers: the default store and a region "eu". An organisation pinned to eu records a call
// between Go peers, shares a file and takes a snapshot: every object is in eu and none in the
// default store, downloads work, and another organisation's objects stay in the default.
func TestStorageRegionsKeepAnOrganisationsObjectsInItsRegion(t *testing.T) {
	ctx := context.Background()
	home, eu := storetest.StartMinIO(t), storetest.StartMinIO(t)
	eu.Bucket = "assist-eu"
	cfg := testConfig(t)
	cfg.S3Endpoint, cfg.S3AccessKey, cfg.S3SecretKey, cfg.S3Bucket, cfg.S3Region = home.Endpoint, home.AccessKey, home.SecretKey, home.Bucket, home.Region
	cfg.StorageRegionSpecs = []string{"eu=http://" + url.UserPassword(eu.AccessKey, eu.SecretKey).String() + "@" + eu.Endpoint + "/" + eu.Bucket}
	ts := startTestServer(t, cfg)
	// Plain clients of the two buckets, to see where the objects really are.
	homeStore, err := store.New(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	euStore, err := store.New(ctx, eu)
	if err != nil {
		t.Fatal(err)
	}
	list := func(s *store.Store, prefix string) []store.ObjectInfo {
		t.Helper()
		objs, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}

	var org orgSummary
	if resp := ts.do(t, "POST", "/v1/orgs", ts.APIKey, map[string]any{"name": "Kunde GmbH", "storage_region": "eu"}, &org); resp.StatusCode != 201 || org.StorageRegion != "eu" {
		t.Fatalf("create org: %d %+v", resp.StatusCode, org)
	}
	var key apiKeyView
	if resp := ts.do(t, "POST", "/v1/api-keys", ts.APIKey, map[string]any{"name": "eu", "organization_id": org.ID}, &key); resp.StatusCode != 201 {
		t.Fatalf("create key: %d", resp.StatusCode)
	}
	var sess api.Session
	if resp := ts.do(t, "POST", "/v1/sessions", key.Key, nil, &sess); resp.StatusCode != 201 {
		t.Fatalf("create session: %d", resp.StatusCode)
	}

	// A call between two Go peers carrying real VP8 and Opus, recorded for a few seconds.
	customer := ts.joinCall(t, linkToken(sess.CustomerURL), "Ann")
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.joinCall(t, linkToken(sess.SpecialistURL), "Sam")
	must(t, "specialist media", specialist.peer.Start())
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	must(t, "customer media", customer.peer.Start())
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	must(t, "video arrives", specialist.peer.WaitReceivedFrom(callCtx, customer.id, webrtc.RTPCodecTypeVideo, 10))
	var rec recordingView
	if resp := ts.do(t, "POST", "/v1/sessions/"+sess.ID+"/recordings", key.Key, nil, &rec); resp.StatusCode != 201 {
		t.Fatalf("start recording: %d", resp.StatusCode)
	}
	before := specialist.peer.ReceivedPackets(webrtc.RTPCodecTypeVideo)
	must(t, "record", specialist.peer.WaitReceived(callCtx, webrtc.RTPCodecTypeVideo, before+100))
	if resp := ts.do(t, "POST", "/v1/sessions/"+sess.ID+"/recordings/"+rec.ID+"/stop", key.Key, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("stop recording: %d", resp.StatusCode)
	}

	// A file and a snapshot, uploaded by the customer.
	base := ts.URL + "/v1/sessions/" + sess.ID
	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("residency "), 1000)...)
	if resp, body := upload(t, base+"/files?name=vertrag.pdf", linkToken(sess.CustomerURL), pdf); resp.StatusCode != 201 {
		t.Fatalf("upload file: %d %s", resp.StatusCode, body)
	}
	var shared wire.FileShared
	specialist.expect(wire.TypeFileShared, &shared)
	photo := pngImage(t, 320, 240)
	if resp, body := upload(t, base+"/snapshots", linkToken(sess.CustomerURL), photo); resp.StatusCode != 201 {
		t.Fatalf("upload snapshot: %d %s", resp.StatusCode, body)
	}
	var taken wire.SnapshotTaken
	specialist.expect(wire.TypeSnapshotTaken, &taken)

	t.Run("downloads read the objects back from the region", func(t *testing.T) {
		for _, d := range []struct {
			url  string
			want []byte
		}{{shared.File.URL, pdf}, {taken.Snapshot.URL, photo}} {
			if got := regionDownload(t, d.url); !bytes.Equal(got, d.want) {
				t.Fatalf("%s: %d bytes, want %d", d.url, len(got), len(d.want))
			}
		}
		var recs struct {
			Data []recordingView `json:"data"`
		}
		deadline := time.Now().Add(20 * time.Second)
		for len(recs.Data) == 0 || recs.Data[0].State != "complete" {
			if time.Now().After(deadline) {
				t.Fatalf("the recording's manifest never reached the region: %+v", recs.Data)
			}
			time.Sleep(100 * time.Millisecond)
			ts.do(t, "GET", "/v1/sessions/"+sess.ID+"/recordings", key.Key, nil, &recs)
		}
		if len(recs.Data[0].Segments) == 0 {
			t.Fatal("no segments")
		}
		for _, seg := range recs.Data[0].Segments {
			if got := regionDownload(t, seg.URL); len(got) < 1000 {
				t.Fatalf("segment of %d bytes", len(got))
			}
		}
	})

	prefix, _ := store.OrgPrefix(org.ID)
	t.Run("every object of the organisation is in its region and none in the default store", func(t *testing.T) {
		kinds := map[string]int{}
		for _, o := range list(euStore, prefix) {
			kinds[strings.Split(strings.TrimPrefix(o.Key, prefix), "/")[2]]++
		}
		if kinds[store.KindRecordings] < 2 || kinds[store.KindFiles] != 1 || kinds[store.KindSnapshots] != 1 {
			t.Fatalf("objects in the region by kind: %v", kinds)
		}
		if objs := list(homeStore, prefix); len(objs) != 0 {
			t.Fatalf("%d objects of the organisation in the default store, first %s", len(objs), objs[0].Key)
		}
	})

	t.Run("another organisation's objects stay in the default store", func(t *testing.T) {
		c := ts.startCall(t)
		if resp, body := upload(t, ts.URL+"/v1/sessions/"+c.session.ID+"/files?name=home.pdf", linkToken(c.session.CustomerURL), pdf); resp.StatusCode != 201 {
			t.Fatalf("upload: %d %s", resp.StatusCode, body)
		}
		homePrefix, _ := store.OrgPrefix(ts.Bootstrap().OrganizationID)
		if len(list(homeStore, homePrefix)) != 1 {
			t.Fatal("the default organisation's file is not in the default store")
		}
		for _, o := range list(euStore, "orgs/") {
			if !strings.HasPrefix(o.Key, prefix) {
				t.Fatalf("%s is in the region", o.Key)
			}
		}
	})

	t.Run("regions are checked and an organisation with objects does not move", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			body         map[string]any
			want         int
		}{
			{"PATCH", "/v1/orgs/" + org.ID, map[string]any{"storage_region": "default"}, http.StatusConflict},
			{"PATCH", "/v1/orgs/" + org.ID, map[string]any{"storage_region": "mars"}, http.StatusUnprocessableEntity},
			{"POST", "/v1/orgs", map[string]any{"name": "Mars", "storage_region": "mars"}, http.StatusUnprocessableEntity},
			{"PATCH", "/v1/orgs/" + org.ID, map[string]any{"storage_region": "eu"}, http.StatusOK},
		} {
			if resp := ts.do(t, c.method, c.path, ts.APIKey, c.body, nil); resp.StatusCode != c.want {
				t.Fatalf("%s %s %v: %d, want %d", c.method, c.path, c.body, resp.StatusCode, c.want)
			}
		}
	})

	t.Run("deleting the session deletes its objects in the region", func(t *testing.T) {
		if resp := ts.do(t, "DELETE", "/v1/sessions/"+sess.ID, key.Key, nil, nil); resp.StatusCode != 204 {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		if objs := list(euStore, prefix); len(objs) != 0 {
			t.Fatalf("%d objects left in the region", len(objs))
		}
		var moved orgSummary
		if resp := ts.do(t, "PATCH", "/v1/orgs/"+org.ID, ts.APIKey, map[string]any{"storage_region": "default"}, &moved); resp.StatusCode != 200 || moved.StorageRegion != "default" {
			t.Fatalf("an organisation without objects could not move: %d %+v", resp.StatusCode, moved)
		}
	})
}

func regionDownload(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, data)
	}
	return data
}
