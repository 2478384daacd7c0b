package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7"
)

// Data residency: a Store can be the default region of a set of regions, each a Store of its
// own (another endpoint, bucket and credentials). Every key and prefix under "orgs/{org}/"
// then goes to the store of that organisation's region, whoever the caller is: the server's
// uploads and downloads, the recorder's segment uploads, retention and session deletes all
// reach an organisation's objects in its region and nowhere else, without knowing regions.

// DefaultRegion names the Store that routes: the node's s3-* settings or the embedded store.
const DefaultRegion = "default"

// ErrUnknownRegion is returned when an organisation is pinned to a region this node does not
// have: its objects are refused rather than written somewhere else.
var ErrUnknownRegion = errors.New("store: unknown storage region")

// RegionOf says which region holds an organisation's objects; "" is the default region.
type RegionOf func(ctx context.Context, org string) (string, error)

type regionTable struct {
	stores   map[string]*Store
	regionOf RegionOf
}

// Route makes s the default region of a set of regions: from then on an operation on a key or
// prefix under "orgs/{org}/" is done on the store of regionOf(org). Keys outside "orgs/" and
// the listing of "orgs/" itself stay on s. Call it once, before s is used.
func (s *Store) Route(regions map[string]*Store, regionOf RegionOf) {
	stores := make(map[string]*Store, len(regions))
	for name, r := range regions {
		stores[name] = r
	}
	s.regions = &regionTable{stores: stores, regionOf: regionOf}
}

// Region returns the store of a named region ("" and DefaultRegion are s).
func (s *Store) Region(name string) (*Store, bool) {
	if name == "" || name == DefaultRegion {
		return s, true
	}
	if s.regions == nil {
		return nil, false
	}
	r, ok := s.regions.stores[name]
	return r, ok
}

// target is the store that holds key (or prefix): s itself unless s routes and the key
// belongs to an organisation pinned to another region. It fails closed: when the region
// cannot be read, or is not one of this node's, nothing is stored or read anywhere.
func (s *Store) target(ctx context.Context, key string) (*Store, error) {
	if s.regions == nil {
		return s, nil
	}
	rest, ok := strings.CutPrefix(key, "orgs/")
	if !ok {
		return s, nil
	}
	org, _, _ := strings.Cut(rest, "/")
	if org == "" {
		return s, nil
	}
	name, err := s.regions.regionOf(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("store: region of organisation %q: %w", org, err)
	}
	if name == "" || name == DefaultRegion {
		return s, nil
	}
	r, ok := s.regions.stores[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (organisation %q)", ErrUnknownRegion, name, org)
	}
	return r, nil
}

// HasObjects reports whether at least one object exists under prefix, which must end with '/'.
// It reads one listing entry, however many objects there are.
func (s *Store) HasObjects(ctx context.Context, prefix string) (bool, error) {
	if err := checkPrefix(prefix); err != nil {
		return false, err
	}
	t, err := s.target(ctx, prefix)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range t.client.ListObjects(ctx, t.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, MaxKeys: 1}) {
		if o.Err != nil {
			return false, wrap("list", prefix, o.Err)
		}
		return true, nil
	}
	return false, nil
}
