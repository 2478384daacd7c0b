package signaling

// Data residency. The node's storage-regions setting names object stores besides the default
// one; an organisation pinned to a region (storage_region on POST /v1/orgs and PATCH
// /v1/orgs/{id}) keeps every object under orgs/{org}/ there. The routing lives in
// recording/store (Store.Route), so every user of s.objects (files, snapshots, recordings,
// retention, session deletes, downloads) reaches the right store without knowing regions.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/problem"
)

// openRegions connects to the configured regions and makes the default store route to them.
// It routes even with no regions configured: an organisation pinned to a region this node
// lacks then gets errors, never the default store.
func (s *Server) openRegions(ctx context.Context) error {
	regions, err := s.cfg.StorageRegions()
	if err != nil {
		return err
	}
	stores := make(map[string]*store.Store, len(regions))
	for _, r := range regions {
		st, err := store.New(ctx, store.Config{Endpoint: r.Endpoint, AccessKey: r.AccessKey, SecretKey: r.SecretKey,
			Bucket: r.Bucket, Region: r.Region, UseTLS: r.UseTLS})
		if err != nil {
			return fmt.Errorf("storage-regions: %s: %w", r.Name, err)
		}
		stores[r.Name] = st
	}
	s.objects.Route(stores, s.regionOf)
	return nil
}

// regionOf is where an organisation's objects live. An organisation that does not exist has
// no residency to keep: the default store.
func (s *Server) regionOf(ctx context.Context, org string) (string, error) {
	o, err := s.rooms.Organization(ctx, org)
	if errors.Is(err, rooms.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return o.StorageRegion, nil
}

// regionView is how the API names a region: the default store is "default".
func regionView(name string) string {
	if name == "" {
		return store.DefaultRegion
	}
	return name
}

// checkRegion turns a requested region into the stored name ("" for the default), answering
// 422 if this node has no such region.
func (s *Server) checkRegion(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	name = strings.TrimSpace(name)
	if _, ok := s.objects.Region(name); !ok {
		problem.Write(w, r, http.StatusUnprocessableEntity, "invalid-field",
			"storage_region: "+name+" is not a storage region of this node (see the storage-regions setting)")
		return "", false
	}
	if name == store.DefaultRegion {
		name = ""
	}
	return name, true
}

// regionChange checks a platform administrator's change of an organisation's region and
// returns the name to store.
func (s *Server) regionChange(w http.ResponseWriter, r *http.Request, orgID, requested string) (string, bool) {
	region, ok := s.checkRegion(w, r, requested)
	if !ok {
		return "", false
	}
	org, err := s.rooms.Organization(r.Context(), orgID)
	if errors.Is(err, rooms.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such organisation")
		return "", false
	}
	if err != nil {
		s.internalError(w, r, err)
		return "", false
	}
	return region, s.regionMovable(w, r, org, region)
}

// regionMovable answers 409 when an organisation that already has objects would change
// region: Assist does not copy objects between regions, and leaving them behind would break
// residency and downloads alike. An operator moves them first (or deletes the sessions).
func (s *Server) regionMovable(w http.ResponseWriter, r *http.Request, org *rooms.Organization, to string) bool {
	if org.StorageRegion == to {
		return true
	}
	prefix, err := store.OrgPrefix(org.ID)
	if err != nil {
		s.internalError(w, r, err)
		return false
	}
	has, err := s.objects.HasObjects(r.Context(), prefix)
	if err != nil {
		s.internalError(w, r, err)
		return false
	}
	if has {
		problem.Write(w, r, http.StatusConflict, "conflict",
			"storage_region: the organisation already has objects in "+regionView(org.StorageRegion)+"; they are not moved between regions")
		return false
	}
	return true
}
