package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateChannel(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"stable", true},
		{"edge-2.x_beta", true},
		{"0day", true},
		{strings.Repeat("a", MaxChannelLen), true},
		{"", false},
		{strings.Repeat("a", MaxChannelLen+1), false},
		{"Stable", false},
		{"-lead", false},
		{".lead", false},
		{"has space", false},
		{"slash/es", false},
		{"nul\x00", false},
		{"ünï", false},
	}
	for _, c := range cases {
		err := ValidateChannel(c.name)
		if (err == nil) != c.ok {
			t.Errorf("ValidateChannel(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidField) {
			t.Errorf("ValidateChannel(%q) error %v does not wrap ErrInvalidField", c.name, err)
		}
	}
}

func TestTopicsRoundTrip(t *testing.T) {
	if got := ManifestTopic("stable"); got != "/meshota/v1/manifest/stable" {
		t.Fatalf("ManifestTopic = %q", got)
	}
	if got := StatusTopic("stable"); got != "/meshota/v1/status/stable" {
		t.Fatalf("StatusTopic = %q", got)
	}
	ch, err := ChannelOfManifestTopic(ManifestTopic("edge"))
	if err != nil || ch != "edge" {
		t.Fatalf("ChannelOfManifestTopic = %q, %v", ch, err)
	}
	ch, err = ChannelOfStatusTopic(StatusTopic("edge"))
	if err != nil || ch != "edge" {
		t.Fatalf("ChannelOfStatusTopic = %q, %v", ch, err)
	}
	for _, bad := range []string{StatusTopic("edge"), "/meshota/v2/manifest/edge", ManifestTopic("Bad"), ManifestTopic("")} {
		if _, err := ChannelOfManifestTopic(bad); !errors.Is(err, ErrInvalidField) {
			t.Errorf("ChannelOfManifestTopic(%q) = %v, want ErrInvalidField", bad, err)
		}
	}
}

func TestProtocolIDsAreVersioned(t *testing.T) {
	for _, id := range []string{ProtocolLatestManifest, ProtocolRootChain} {
		if !strings.HasPrefix(id, "/meshota/") || !strings.HasSuffix(id, "/1.0.0") {
			t.Errorf("protocol ID %q is not /meshota/.../<semver>", id)
		}
	}
}
