package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// StorageRegion is one named object store besides the default one (the s3-* settings or the
// embedded store), for organisations whose data must stay in a place (data residency).
type StorageRegion struct {
	Name      string
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string // the S3 region the bucket is in (default us-east-1)
	UseTLS    bool
}

var regionName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// StorageRegions parses the storage-regions setting: entries such as
// "eu=https://KEY:SECRET@s3.eu.example.com/assist-eu?region=eu-west-1". The scheme says whether
// to use TLS; the credentials and bucket are required; "region" is the bucket's S3 region.
func (c *Config) StorageRegions() ([]StorageRegion, error) {
	var out []StorageRegion
	seen := map[string]bool{}
	for _, entry := range c.StorageRegionSpecs {
		name, raw, ok := strings.Cut(entry, "=")
		if !ok || !regionName.MatchString(name) {
			return nil, fmt.Errorf("storage-regions: %q: want name=http(s)://KEY:SECRET@host:port/bucket, the name in lower-case letters, digits and '-'", redactRegion(entry))
		}
		if name == "default" {
			return nil, fmt.Errorf("storage-regions: %q: \"default\" is the s3-* settings' store; choose another name", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("storage-regions: %q is named twice", name)
		}
		seen[name] = true
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("storage-regions: %s: not an http(s) URL", name)
		}
		secret, _ := u.User.Password()
		r := StorageRegion{Name: name, Endpoint: u.Host, AccessKey: u.User.Username(), SecretKey: secret,
			Bucket: strings.Trim(u.Path, "/"), Region: u.Query().Get("region"), UseTLS: u.Scheme == "https"}
		if r.Region == "" {
			r.Region = "us-east-1"
		}
		switch {
		case r.AccessKey == "" || r.SecretKey == "":
			return nil, fmt.Errorf("storage-regions: %s: the URL needs KEY:SECRET@ credentials", name)
		case r.Bucket == "" || strings.Contains(r.Bucket, "/"):
			return nil, fmt.Errorf("storage-regions: %s: the URL's path must be one bucket name", name)
		}
		out = append(out, r)
	}
	return out, nil
}

// redactRegion hides the credentials of an entry quoted in an error.
func redactRegion(entry string) string {
	if i := strings.LastIndex(entry, "@"); i >= 0 {
		if j := strings.Index(entry, "://"); j >= 0 && j < i {
			return entry[:j+3] + "…" + entry[i:]
		}
	}
	return entry
}
