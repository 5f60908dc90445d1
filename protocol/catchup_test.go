package protocol

import (
	"bytes"
	"errors"
	"testing"
)

func TestCatchupRoundTrip(t *testing.T) {
	req := &LatestManifestRequest{Channel: "stable", HaveSequence: 9}
	b, err := req.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseLatestManifestRequest(b, Limits{})
	if err != nil || *back != *req {
		t.Fatalf("latest request: %+v, %v", back, err)
	}
	resp := &LatestManifestResponse{Manifest: []byte("signed")}
	b, _ = resp.Encode()
	r2, err := ParseLatestManifestResponse(b, Limits{})
	if err != nil || !bytes.Equal(r2.Manifest, resp.Manifest) {
		t.Fatalf("latest response: %+v, %v", r2, err)
	}
	cr := &RootChainRequest{HaveVersion: 3}
	b, _ = cr.Encode()
	c2, err := ParseRootChainRequest(b, Limits{})
	if err != nil || *c2 != *cr {
		t.Fatalf("chain request: %+v, %v", c2, err)
	}
	cresp := &RootChainResponse{Roots: [][]byte{[]byte("r4"), []byte("r5")}}
	b, _ = cresp.Encode()
	c3, err := ParseRootChainResponse(b, Limits{})
	if err != nil || len(c3.Roots) != 2 || string(c3.Roots[1]) != "r5" {
		t.Fatalf("chain response: %+v, %v", c3, err)
	}
}

func TestCatchupBounds(t *testing.T) {
	if _, err := (&LatestManifestRequest{Channel: "Bad"}).Encode(); !errors.Is(err, ErrInvalidField) {
		t.Errorf("bad channel encoded: %v", err)
	}
	big, _ := (&LatestManifestResponse{Manifest: make([]byte, DefaultLimits.MaxManifestBytes+1)}).Encode()
	if _, err := ParseLatestManifestResponse(big, Limits{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized manifest in response: %v", err)
	}
	long := &RootChainResponse{Roots: make([][]byte, 20)}
	for i := range long.Roots {
		long.Roots[i] = []byte{1}
	}
	b, _ := long.Encode()
	if _, err := ParseRootChainResponse(b, Limits{}); !errors.Is(err, ErrLimitExceeded) {
		t.Errorf("chain of 20: %v", err)
	}
	if _, err := ParseRootChainResponse(b, Limits{MaxRootChain: 32}); err != nil {
		t.Errorf("chain of 20 under a limit of 32: %v", err)
	}
	fat, _ := (&RootChainResponse{Roots: [][]byte{make([]byte, DefaultLimits.MaxRootBytes+1)}}).Encode()
	if _, err := ParseRootChainResponse(fat, Limits{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized root: %v", err)
	}
	if _, err := ParseRootChainRequest([]byte{0xa1, 0x01}, Limits{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated request: %v", err)
	}
	if _, err := ParseLatestManifestRequest(make([]byte, 300), Limits{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized request: %v", err)
	}
}

func FuzzParseCatchup(f *testing.F) {
	for _, v := range []interface{ Encode() ([]byte, error) }{
		&LatestManifestRequest{Channel: "stable", HaveSequence: 1},
		&LatestManifestResponse{Manifest: []byte{1, 2}},
		&RootChainRequest{HaveVersion: 2},
		&RootChainResponse{Roots: [][]byte{{1}}},
	} {
		b, _ := v.Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ParseLatestManifestRequest(data, Limits{}); err == nil {
			if ValidateChannel(r.Channel) != nil {
				t.Fatal("accepted a bad channel")
			}
		}
		if r, err := ParseLatestManifestResponse(data, Limits{}); err == nil && len(r.Manifest) > DefaultLimits.MaxManifestBytes {
			t.Fatal("accepted an oversized manifest")
		}
		ParseRootChainRequest(data, Limits{})
		if r, err := ParseRootChainResponse(data, Limits{}); err == nil && len(r.Roots) > DefaultLimits.MaxRootChain {
			t.Fatal("accepted an overlong chain")
		}
	})
}
