package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

type doc struct {
	Name  string   `cbor:"1,keyasint"`
	Seq   uint64   `cbor:"2,keyasint"`
	Items []uint32 `cbor:"3,keyasint,omitempty"`
}

func TestRoundTripIsDeterministic(t *testing.T) {
	d := doc{Name: "stable", Seq: 7, Items: []uint32{1, 2, 3}}
	a, err := Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	// Golden: a change to the encoding rules changes these bytes.
	const want = "a30166737461626c6502070383010203"
	if got := hex.EncodeToString(a); got != want {
		t.Fatalf("encoding = %s, want %s", got, want)
	}
	var back doc
	if err := Unmarshal(a, &back, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	b, _ := Marshal(back)
	if !bytes.Equal(a, b) {
		t.Fatal("re-encoding differs")
	}
}

func TestUnmarshalRejects(t *testing.T) {
	long := make([]byte, 70<<10)
	cases := []struct {
		name string
		hex  string
		raw  []byte
		lim  Limits
		want error
	}{
		{name: "unknown field", hex: "a2016161070a", want: ErrMalformed},
		{name: "duplicate key", hex: "a20161610161 62", want: ErrMalformed},
		{name: "non-minimal integer", hex: "a2016161021807", want: ErrMalformed},
		{name: "unsorted keys", hex: "a202070161 61", want: ErrMalformed},
		{name: "indefinite array", hex: "a201616103 9f01ff", want: ErrMalformed},
		{name: "trailing bytes", hex: "a10161 6100", want: ErrMalformed},
		{name: "tag", hex: "a10161 61 c1 00", want: ErrMalformed},
		{name: "too many elements", hex: "a10398 11 0101010101010101010101010101010101", lim: Limits{MaxElements: 16}, want: ErrMalformed},
		{name: "too large", raw: long, want: ErrTooLarge},
		{name: "empty", hex: "", want: ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.raw
			if data == nil {
				var err error
				data, err = hex.DecodeString(stripSpaces(c.hex))
				if err != nil {
					t.Fatal(err)
				}
			}
			var d doc
			err := Unmarshal(data, &d, c.lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func stripSpaces(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil))
}

func FuzzUnmarshal(f *testing.F) {
	seed, _ := Marshal(doc{Name: "x", Seq: 1, Items: []uint32{9}})
	f.Add(seed)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		if err := Unmarshal(data, &d, DefaultLimits); err != nil {
			return
		}
		again, err := Marshal(d)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted non-canonical input %x (re-encoded %x, %v)", data, again, err)
		}
	})
}
