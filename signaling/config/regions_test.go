package config

import (
	"strings"
	"testing"
)

func TestStorageRegions(t *testing.T) {
	c := Defaults()
	c.StorageRegionSpecs = []string{"eu=https://AK:S%2Fk@s3.eu.example.com/assist-eu?region=eu-west-1", "ch=http://k:s@10.0.0.5:9000/b"}
	got, err := c.StorageRegions()
	if err != nil {
		t.Fatal(err)
	}
	want := []StorageRegion{
		{Name: "eu", Endpoint: "s3.eu.example.com", AccessKey: "AK", SecretKey: "S/k", Bucket: "assist-eu", Region: "eu-west-1", UseTLS: true},
		{Name: "ch", Endpoint: "10.0.0.5:9000", AccessKey: "k", SecretKey: "s", Bucket: "b", Region: "us-east-1"},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v", got)
	}

	bad := []struct{ name, spec, mention string }{
		{"no name", "https://k:s@h/b", "storage-regions"},
		{"the default's name", "default=https://k:s@h/b", "default"},
		{"no credentials", "eu=https://h/b", "credentials"},
		{"no bucket", "eu=https://k:s@h/", "bucket"},
		{"a path deeper than a bucket", "eu=https://k:s@h/b/c", "bucket"},
		{"another scheme", "eu=ftp://k:s@h/b", "http"},
		{"an upper-case name", "EU=https://k:s@h/b", "storage-regions"},
	}
	for _, tc := range bad {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			c := Defaults()
			c.StorageRegionSpecs = []string{tc.spec}
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.mention) || !strings.HasPrefix(err.Error(), "storage-regions") {
				t.Fatalf("err = %v", err)
			}
			if strings.Contains(err.Error(), "k:s@") {
				t.Fatalf("the error shows the credentials: %v", err)
			}
		})
	}
	t.Run("a name given twice is refused", func(t *testing.T) {
		c := Defaults()
		c.StorageRegionSpecs = []string{"eu=https://k:s@h/b", "eu=https://k:s@h/c"}
		if err := c.Validate(); err == nil {
			t.Fatal("accepted")
		}
	})
}
