package store_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/recording/store/storetest"
)

// TestRegionsRouteEachOrganisationToItsStore: with a default store routing to a region, every
// operation on an organisation's keys reaches its region and only it.
func TestRegionsRouteEachOrganisationToItsStore(t *testing.T) {
	ctx := context.Background()
	def, err := store.New(ctx, storetest.StartEmbedded(t))
	if err != nil {
		t.Fatal(err)
	}
	eu, err := store.New(ctx, storetest.StartEmbedded(t))
	if err != nil {
		t.Fatal(err)
	}
	// Plain clients of the two buckets, to see where objects really are.
	rawDef, rawEU := *def, *eu
	var mu sync.Mutex
	pinned := map[string]string{"org_eu": "eu", "org_gone": "mars"}
	def.Route(map[string]*store.Store{"eu": eu}, func(_ context.Context, org string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if org == "org_down" {
			return "", errors.New("the organisation store is down")
		}
		return pinned[org], nil
	})

	key := func(org, kind, name string) string {
		k, err := store.ObjectKey(org, "ses_1", kind, name)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	put := func(s *store.Store, k string) error {
		_, err := s.Put(ctx, k, strings.NewReader("data of "+k), -1, "text/plain")
		return err
	}
	for _, k := range []string{key("org_eu", store.KindFiles, "a.pdf"), key("org_eu", store.KindSnapshots, "s.png"), key("org_home", store.KindFiles, "b.pdf")} {
		if err := put(def, k); err != nil {
			t.Fatal(err)
		}
	}
	count := func(s *store.Store, prefix string) int {
		objs, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return len(objs)
	}

	t.Run("an organisation pinned to a region has its objects there and none in the default", func(t *testing.T) {
		if n := count(&rawEU, "orgs/org_eu/"); n != 2 {
			t.Fatalf("%d objects in the region, want 2", n)
		}
		if n := count(&rawDef, "orgs/org_eu/"); n != 0 {
			t.Fatalf("%d objects in the default store", n)
		}
	})
	t.Run("an organisation without a region stays in the default", func(t *testing.T) {
		if count(&rawDef, "orgs/org_home/") != 1 || count(&rawEU, "orgs/org_home/") != 0 {
			t.Fatal("the default organisation's object is not only in the default store")
		}
	})
	t.Run("reads, listings, stats and presigned URLs go to the region", func(t *testing.T) {
		k := key("org_eu", store.KindFiles, "a.pdf")
		body, info, err := def.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(body)
		body.Close()
		if string(data) != "data of "+k || info.Size != int64(len(data)) {
			t.Fatalf("got %q", data)
		}
		if _, err := def.Stat(ctx, k); err != nil {
			t.Fatal(err)
		}
		if n := count(def, "orgs/org_eu/sessions/ses_1/"); n != 2 {
			t.Fatalf("listed %d", n)
		}
		if has, err := def.HasObjects(ctx, "orgs/org_eu/"); err != nil || !has {
			t.Fatalf("HasObjects = %v, %v", has, err)
		}
		u, err := def.PresignGet(ctx, k, time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		data, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(data) != "data of "+k {
			t.Fatalf("presigned GET: %d %q", resp.StatusCode, data)
		}
	})
	t.Run("deletes reach the region", func(t *testing.T) {
		if err := def.Delete(ctx, key("org_eu", store.KindSnapshots, "s.png")); err != nil {
			t.Fatal(err)
		}
		if n := count(&rawEU, "orgs/org_eu/"); n != 1 {
			t.Fatalf("%d left after Delete", n)
		}
		if err := def.DeletePrefix(ctx, "orgs/org_eu/sessions/ses_1/"); err != nil {
			t.Fatal(err)
		}
		if n := count(&rawEU, "orgs/org_eu/"); n != 0 {
			t.Fatalf("%d left after DeletePrefix", n)
		}
		if has, err := def.HasObjects(ctx, "orgs/org_eu/"); err != nil || has {
			t.Fatalf("HasObjects = %v, %v", has, err)
		}
	})
	t.Run("an organisation pinned to a region the node lacks stores nothing anywhere", func(t *testing.T) {
		err := put(def, key("org_gone", store.KindFiles, "c.pdf"))
		if !errors.Is(err, store.ErrUnknownRegion) {
			t.Fatalf("Put = %v, want ErrUnknownRegion", err)
		}
		if count(&rawDef, "orgs/org_gone/") != 0 || count(&rawEU, "orgs/org_gone/") != 0 {
			t.Fatal("the object was stored somewhere")
		}
	})
	t.Run("when the region cannot be read nothing is stored", func(t *testing.T) {
		if err := put(def, key("org_down", store.KindFiles, "d.pdf")); err == nil {
			t.Fatal("stored without knowing the region")
		}
		if count(&rawDef, "orgs/org_down/") != 0 {
			t.Fatal("the object went to the default store")
		}
	})
	t.Run("the regions are named", func(t *testing.T) {
		if r, ok := def.Region("eu"); !ok || r != eu {
			t.Fatal("region eu not found")
		}
		if r, ok := def.Region(store.DefaultRegion); !ok || r != def {
			t.Fatal("the default region is not the routing store")
		}
		if _, ok := def.Region("mars"); ok {
			t.Fatal("an unknown region was found")
		}
	})
}
