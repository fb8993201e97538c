package capability

import (
	"errors"
	"testing"
)

func TestTaggedActivityBuckets(t *testing.T) {
	tests := []struct {
		name, tag string
	}{
		{"SendEmail", "gpu"},
		{"with#hash@and:colon", "eu-west"},
	}
	for _, tt := range tests {
		b := TaggedActivityBucket(tt.name, tt.tag)
		got, err := ParseBucket(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.Kind != TaggedActivity || got.Name != tt.name || got.Tag != tt.tag || got.String() != b {
			t.Fatalf("%s parsed as %+v", b, got)
		}
	}
	for _, bad := range []string{"t:nohash", "t:#name", "t:a{b#name", "t:tag#"} {
		if _, err := ParseBucket(bad); !errors.Is(err, ErrInvalidBucket) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
	for _, bad := range []string{"", "a#b", "x\ny"} {
		if err := ValidateTag(bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateTag(%q) = %v", bad, err)
		}
	}
	if TaggedActivity.String() != "tagged-activity" {
		t.Fatal(TaggedActivity.String())
	}
}
