package crypto

import (
	"bytes"
	"errors"
	"testing"
)

const testType = "application/vnd.meshota.test.v1+cbor"

func TestPAE(t *testing.T) {
	// The DSSE specification's own example.
	got := PAE("http://example.com/HelloWorld", []byte("hello world"))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if string(got) != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
	if string(PAE("", nil)) != "DSSEv1 0  0 " {
		t.Fatalf("empty PAE = %q", PAE("", nil))
	}
	// Type and payload cannot trade bytes.
	if bytes.Equal(PAE("a b", []byte("c")), PAE("a", []byte("b c"))) {
		t.Fatal("PAE is ambiguous")
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	ks := newKeys(t, 3, 10)
	env, err := Sign(testType, []byte("payload"), ks[0], ks[1], ks[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Signatures) != 2 {
		t.Fatalf("%d signatures, want 2 (duplicate signer signs once)", len(env.Signatures))
	}
	if err := env.AddSignature(ks[2]); err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvelope(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.Marshal()
	if !bytes.Equal(again, b) || got.PayloadType != testType || string(got.Payload) != "payload" || len(got.Signatures) != 3 {
		t.Fatalf("round trip changed the envelope: %+v", got)
	}
	if _, err := ParseEnvelope(b, len(b)-1); err == nil {
		t.Fatal("envelope over maxBytes accepted")
	}
	if _, err := Sign(testType, []byte("x")); !errors.Is(err, ErrMalformedEnvelope) {
		t.Fatalf("Sign without key: %v", err)
	}
	if _, err := Sign("", []byte("x"), ks[0]); !errors.Is(err, ErrMalformedEnvelope) {
		t.Fatalf("Sign without type: %v", err)
	}
}

func TestParseEnvelopeRefuses(t *testing.T) {
	k := fixedSigningKey(t, 1)
	mk := func(f func(e *Envelope)) []byte {
		e, err := Sign(testType, []byte("p"), k)
		if err != nil {
			t.Fatal(err)
		}
		f(e)
		b, err := marshalUnchecked(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := mk(func(*Envelope) {})
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte{0xff, 0x00}},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"no signature", mk(func(e *Envelope) { e.Signatures = nil })},
		{"short signature", mk(func(e *Envelope) { e.Signatures[0].Sig = e.Signatures[0].Sig[:63] })},
		{"no type", mk(func(e *Envelope) { e.PayloadType = "" })},
		{"long type", mk(func(e *Envelope) { e.PayloadType = string(bytes.Repeat([]byte("t"), MaxPayloadTypeLen+1)) })},
		{"too many signatures", mk(func(e *Envelope) {
			for range MaxSignatures {
				e.Signatures = append(e.Signatures, e.Signatures[0])
			}
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseEnvelope(tc.data, 0); !errors.Is(err, ErrMalformedEnvelope) {
				t.Fatalf("got %v, want ErrMalformedEnvelope", err)
			}
		})
	}
}

func TestVerifyThreshold(t *testing.T) {
	ks := newKeys(t, 4, 20) // 0..2 in the role, 3 outsider
	keys := map[KeyID]PublicKey{}
	var ids []KeyID
	for _, k := range ks {
		keys[k.Public().ID()] = k.Public()
	}
	for _, k := range ks[:3] {
		ids = append(ids, k.Public().ID())
	}
	role2 := Role{KeyIDs: ids, Threshold: 2}
	payload := []byte("release 1.2.3")
	sign := func(signers ...*SigningKey) *Envelope {
		e, err := Sign(testType, payload, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// The same key listed under a second, made-up ID.
	alias := KeyID{0xaa}
	aliasKeys := map[KeyID]PublicKey{alias: ks[0].Public()}
	for id, pk := range keys {
		aliasKeys[id] = pk
	}
	aliasRole := Role{KeyIDs: append(append([]KeyID{}, ids...), alias), Threshold: 2}
	dupSig := sign(ks[0])
	dupSig.Signatures = append(dupSig.Signatures, dupSig.Signatures[0])
	aliasSig := sign(ks[0])
	aliasSig.Signatures = append(aliasSig.Signatures, Signature{KeyID: alias, Sig: aliasSig.Signatures[0].Sig})
	tampered := sign(ks[0], ks[1])
	tampered.Payload = []byte("release 9.9.9")
	badSig := sign(ks[0], ks[1])
	badSig.Signatures[1].Sig = bytes.Clone(badSig.Signatures[1].Sig)
	badSig.Signatures[1].Sig[5] ^= 1
	swapped := sign(ks[0], ks[1])
	swapped.Signatures[0].KeyID, swapped.Signatures[1].KeyID = swapped.Signatures[1].KeyID, swapped.Signatures[0].KeyID

	tests := []struct {
		name string
		env  *Envelope
		typ  string
		keys map[KeyID]PublicKey
		role Role
		want error
	}{
		{"two of three", sign(ks[0], ks[1]), testType, keys, role2, nil},
		{"three of three", sign(ks[0], ks[1], ks[2]), testType, keys, role2, nil},
		{"outsider does not count", sign(ks[0], ks[3]), testType, keys, role2, ErrThresholdNotMet},
		{"too few", sign(ks[2]), testType, keys, role2, ErrThresholdNotMet},
		{"wrong key only", sign(ks[3]), testType, keys, role2, ErrThresholdNotMet},
		{"duplicate signature", dupSig, testType, keys, role2, ErrThresholdNotMet},
		{"same key under two IDs", aliasSig, testType, aliasKeys, aliasRole, ErrThresholdNotMet},
		{"alias role threshold counts distinct keys", sign(ks[0], ks[1]), testType, aliasKeys, Role{KeyIDs: aliasRole.KeyIDs, Threshold: 4}, ErrBadThreshold},
		{"tampered payload", tampered, testType, keys, role2, ErrThresholdNotMet},
		{"bad signature", badSig, testType, keys, role2, ErrThresholdNotMet},
		{"key IDs swapped", swapped, testType, keys, role2, ErrThresholdNotMet},
		{"wrong payload type", sign(ks[0], ks[1]), "application/other", keys, role2, ErrPayloadType},
		{"threshold 0", sign(ks[0], ks[1]), testType, keys, Role{KeyIDs: ids}, ErrBadThreshold},
		{"threshold negative", sign(ks[0], ks[1]), testType, keys, Role{KeyIDs: ids, Threshold: -1}, ErrBadThreshold},
		{"threshold above keys", sign(ks[0], ks[1], ks[2]), testType, keys, Role{KeyIDs: ids, Threshold: 4}, ErrBadThreshold},
		{"role key unknown", sign(ks[0]), testType, map[KeyID]PublicKey{}, Role{KeyIDs: ids[:1], Threshold: 1}, ErrBadThreshold},
		{"empty role", sign(ks[0]), testType, keys, Role{Threshold: 1}, ErrBadThreshold},
		{"nil envelope", nil, testType, keys, role2, ErrMalformedEnvelope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyThreshold(tc.env, tc.typ, tc.keys, tc.role)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// A signature for one payload type never verifies for another, even when
// the type is relabelled after signing.
func TestSignatureBindsPayloadType(t *testing.T) {
	k := fixedSigningKey(t, 5)
	e, _ := Sign("type/a", []byte("x"), k)
	e.PayloadType = "type/b"
	role := Role{KeyIDs: []KeyID{k.Public().ID()}, Threshold: 1}
	err := VerifyThreshold(e, "type/b", map[KeyID]PublicKey{k.Public().ID(): k.Public()}, role)
	if !errors.Is(err, ErrThresholdNotMet) {
		t.Fatalf("relabelled envelope: %v", err)
	}
}
