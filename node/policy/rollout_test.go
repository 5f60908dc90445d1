package policy

import (
	"fmt"
	"testing"
)

func TestRolloutBucketVectors(t *testing.T) {
	// Pinned: a change to the rule would move devices between stages.
	cases := []struct {
		channel, device string
	}{
		{"stable", "dev-aaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{"stable", "dev-bbbbbbbbbbbbbbbbbbbbbbbbbb"},
		{"beta", "dev-aaaaaaaaaaaaaaaaaaaaaaaaaa"},
	}
	got := make([]uint32, len(cases))
	for i, c := range cases {
		got[i] = RolloutBucket(c.channel, c.device)
		if got[i] >= MaxBasisPoints {
			t.Fatalf("bucket %d out of range", got[i])
		}
	}
	if want := goldenBuckets; fmt.Sprint(got) != want {
		t.Fatalf("buckets %v, want %s", got, want)
	}
	if got[0] == got[2] && got[0] == got[1] {
		t.Fatal("channel and device do not move the bucket")
	}
}

func TestRaisingTheShareOnlyAddsDevices(t *testing.T) {
	const n = 20000
	prev := map[int]bool{}
	for _, bp := range []uint32{0, 100, 1000, 3000, 5000, 9999, 10000} {
		in := 0
		for i := range n {
			id := fmt.Sprintf("dev-%06d", i)
			ok := InRollout("stable", id, bp)
			if prev[i] && !ok {
				t.Fatalf("device %s left the rollout when it grew to %d bp", id, bp)
			}
			prev[i] = ok
			if ok {
				in++
			}
		}
		share := float64(in) / n
		if d := share - float64(bp)/MaxBasisPoints; d > 0.01 || d < -0.01 {
			t.Fatalf("%d bp selected %.3f of the fleet", bp, share)
		}
	}
}
