package store

import (
	"bytes"
	"testing"
)

func encodeRecord(kind byte, key string, value []byte) []byte {
	return append(appendRecordHead(nil, kind, key, value), value...)
}

// FuzzPackScan scans arbitrary bytes as a pack: the scan never fails on
// them (only reads can fail), stops at the end of the valid part, every
// record it accepts re-encodes to exactly the bytes it was read from, what
// it skips between them is zero padding up to a multiple of alignment, and
// a scan without value checks accepts at least as much.
func FuzzPackScan(f *testing.F) {
	valid := encodeRecord(recPut, "/CIQA", []byte("value"))
	valid = append(valid, encodeRecord(recTombstone, "/CIQA", tombstoneValue(loc{pack: 3, off: 40}))...)
	valid = append(valid, encodeRecord(recPut, "/B", nil)...)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid), 0, 0, 0))
	f.Add([]byte(recMagic))
	padded := append(bytes.Clone(valid), make([]byte, alignment-len(valid))...)
	f.Add(append(padded, valid...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []record
		end, err := scanPack(bytes.NewReader(data), int64(len(data)), true, func(r record) { recs = append(recs, r) })
		if err != nil {
			t.Fatal(err)
		}
		if end < 0 || end > int64(len(data)) {
			t.Fatalf("valid part ends at %d of %d bytes", end, len(data))
		}
		off := int64(0)
		padding := func(to int64) {
			if to == off {
				return
			}
			if off%alignment == 0 || to != min(alignUp(off), int64(len(data))) || bytes.ContainsFunc(data[off:to], func(r rune) bool { return r != 0 }) {
				t.Fatalf("skipped %d..%d, which is not padding", off, to)
			}
		}
		for _, r := range recs {
			padding(r.off)
			off = r.off
			value := data[off+int64(r.hlen) : off+r.size()]
			if got := encodeRecord(r.kind, r.key, value); !bytes.Equal(got, data[off:off+r.size()]) {
				t.Fatalf("record at %d does not re-encode to its bytes", off)
			}
			if r.kind == recTombstone && !bytes.Equal(tombstoneValue(r.target), value) {
				t.Fatalf("tombstone at %d decoded to %+v", off, r.target)
			}
			off += r.size()
		}
		padding(end)
		loose, err := scanPack(bytes.NewReader(data), int64(len(data)), false, func(record) {})
		if err != nil || loose < end {
			t.Fatalf("scan without value checks ends at %d (%v), with them at %d", loose, err, end)
		}
	})
}

// TestScanStopsAtFirstBadRecord: a valid record after a damaged one is
// not accepted (the scan cannot know where it starts).
func TestScanStopsAtFirstBadRecord(t *testing.T) {
	a := encodeRecord(recPut, "/A1", []byte("first"))
	b := encodeRecord(recPut, "/B2", []byte("second"))
	c := encodeRecord(recPut, "/C3", []byte("third"))
	tests := []struct {
		name   string
		data   []byte
		verify bool
		want   int64
		keys   int
	}{
		{"all valid", concat(a, b, c), true, int64(len(a) + len(b) + len(c)), 3},
		{"second value garbled", concat(a, garble(b, len(b)-1), c), true, int64(len(a)), 1},
		{"second value garbled, headers only", concat(a, garble(b, len(b)-1), c), false, int64(len(a) + len(b) + len(c)), 3},
		{"second header garbled", concat(a, garble(b, 9), c), false, int64(len(a)), 1},
		{"empty", nil, true, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			end, err := scanPack(bytes.NewReader(tc.data), int64(len(tc.data)), tc.verify, func(record) { n++ })
			if err != nil || end != tc.want || n != tc.keys {
				t.Errorf("scan = %d records, end %d, %v; want %d, %d", n, end, err, tc.keys, tc.want)
			}
		})
	}
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func garble(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x55
	return b
}
