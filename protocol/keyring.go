package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/meshota/meshota/protocol/codec"
	mh "github.com/multiformats/go-multihash"
)

// The keyring of a channel epoch holds the epoch key sealed to every
// enrolled device. It is cut into 2^ShardBits shards by the leading bits of
// the device ID, each a raw block; the keyring root block lists the shards'
// SHA2-256 digests. A device fetches the root (named by the signed
// manifest) and exactly one shard.

// TargetShardEntries is the mean number of entries per shard the builder
// aims for; MaxShardEntries (Limits) bounds the largest shard.
const TargetShardEntries = 64

// MaxSealedEntry bounds one sealed epoch key (an HPKE encapsulation plus a
// sealed 32-byte key: 1,168 bytes with ML-KEM-768+X25519, 80 with X25519).
const MaxSealedEntry = 2048

// KeyringRoot is the document in the keyring root block.
type KeyringRoot struct {
	Channel   string `cbor:"1,keyasint"`
	Epoch     uint64 `cbor:"2,keyasint"`
	ShardBits uint8  `cbor:"3,keyasint"` // 2^ShardBits shards
	// Shards concatenates the 32-byte SHA2-256 digests of the shard blocks
	// in shard order; shard i is the raw CIDv1 of digest i.
	Shards  []byte `cbor:"4,keyasint"`
	Devices uint64 `cbor:"5,keyasint"` // entries over all shards (informational)
}

// KeyringShard is the document in one shard block.
type KeyringShard struct {
	Channel string         `cbor:"1,keyasint"`
	Epoch   uint64         `cbor:"2,keyasint"`
	Index   uint32         `cbor:"3,keyasint"`
	Entries []KeyringEntry `cbor:"4,keyasint"` // strictly ascending by Device
}

// KeyringEntry is one device's sealed epoch key (crypto.SealKey output).
type KeyringEntry struct {
	Device DeviceID `cbor:"1,keyasint"`
	Sealed []byte   `cbor:"2,keyasint"`
}

// ShardIndex is the shard holding id's entry in a keyring of 2^bits shards:
// the first bits bits of the device ID (big-endian).
func ShardIndex(id DeviceID, bits uint8) uint32 {
	if bits == 0 {
		return 0
	}
	return binary.BigEndian.Uint32(id[:4]) >> (32 - uint(bits))
}

// NumShards is 2^ShardBits.
func (r *KeyringRoot) NumShards() int { return 1 << r.ShardBits }

// ShardCID returns the CID of shard i (i < NumShards).
func (r *KeyringRoot) ShardCID(i uint32) cid.Cid {
	d := r.Shards[32*int(i) : 32*int(i)+32]
	h, err := mh.Encode(d, mh.SHA2_256)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

// ShardFor returns the index and CID of the shard a device must fetch.
func (r *KeyringRoot) ShardFor(id DeviceID) (uint32, cid.Cid) {
	i := ShardIndex(id, r.ShardBits)
	return i, r.ShardCID(i)
}

// ParseKeyringRoot checks that data is the keyring root the validated
// manifest m names (same CID, channel and epoch) and decodes it.
func ParseKeyringRoot(data []byte, m *Manifest, l Limits) (*KeyringRoot, error) {
	l = l.withDefaults()
	if len(data) > l.MaxKeyringRootBytes {
		return nil, fmt.Errorf("%w: keyring root of %d bytes, limit %d", ErrTooLarge, len(data), l.MaxKeyringRootBytes)
	}
	if err := checkBlock("keyring root", m.Keyring.Root, data); err != nil {
		return nil, err
	}
	var r KeyringRoot
	if err := codec.Unmarshal(data, &r, codec.Limits{MaxBytes: l.MaxKeyringRootBytes, MaxElements: 16}); err != nil {
		return nil, fmt.Errorf("%w: keyring root: %v", ErrMalformed, err)
	}
	if r.Channel != m.Channel || r.Epoch != m.Keyring.Epoch {
		return nil, fmt.Errorf("%w: keyring root is for %q epoch %d, manifest wants %q epoch %d", ErrKeyringMismatch, r.Channel, r.Epoch, m.Channel, m.Keyring.Epoch)
	}
	if int(r.ShardBits) > l.MaxShardBits {
		return nil, fmt.Errorf("%w: keyring of 2^%d shards, limit 2^%d", ErrLimitExceeded, r.ShardBits, l.MaxShardBits)
	}
	if len(r.Shards) != 32*r.NumShards() {
		return nil, fmt.Errorf("%w: keyring root lists %d bytes of digests for %d shards", ErrInvalidField, len(r.Shards), r.NumShards())
	}
	return &r, nil
}

// ParseKeyringShard checks that data is shard index of root (same CID,
// channel, epoch and position, entries sorted and in the right shard,
// within bounds) and decodes it.
func ParseKeyringShard(data []byte, root *KeyringRoot, index uint32, l Limits) (*KeyringShard, error) {
	l = l.withDefaults()
	if len(data) > l.MaxShardBytes {
		return nil, fmt.Errorf("%w: keyring shard of %d bytes, limit %d", ErrTooLarge, len(data), l.MaxShardBytes)
	}
	if int(index) >= root.NumShards() {
		return nil, fmt.Errorf("%w: shard %d of a keyring with %d shards", ErrInvalidField, index, root.NumShards())
	}
	if err := checkBlock("keyring shard", root.ShardCID(index), data); err != nil {
		return nil, err
	}
	var s KeyringShard
	if err := codec.Unmarshal(data, &s, codec.Limits{MaxBytes: l.MaxShardBytes, MaxElements: l.MaxShardEntries}); err != nil {
		return nil, fmt.Errorf("%w: keyring shard: %v", ErrMalformed, err)
	}
	if s.Channel != root.Channel || s.Epoch != root.Epoch || s.Index != index {
		return nil, fmt.Errorf("%w: shard is %q epoch %d #%d, expected %q epoch %d #%d", ErrKeyringMismatch, s.Channel, s.Epoch, s.Index, root.Channel, root.Epoch, index)
	}
	if err := s.checkEntries(root.ShardBits, l); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *KeyringShard) checkEntries(bits uint8, l Limits) error {
	if len(s.Entries) > l.MaxShardEntries {
		return fmt.Errorf("%w: shard of %d entries, limit %d", ErrLimitExceeded, len(s.Entries), l.MaxShardEntries)
	}
	for i, e := range s.Entries {
		if i > 0 && bytes.Compare(s.Entries[i-1].Device[:], e.Device[:]) >= 0 {
			return fmt.Errorf("%w: shard entries not strictly sorted by device ID", ErrInvalidField)
		}
		if ShardIndex(e.Device, bits) != s.Index {
			return fmt.Errorf("%w: device %s does not belong in shard %d", ErrInvalidField, e.Device, s.Index)
		}
		if len(e.Sealed) == 0 || len(e.Sealed) > MaxSealedEntry {
			return fmt.Errorf("%w: sealed entry of %d bytes (1 to %d)", ErrLimitExceeded, len(e.Sealed), MaxSealedEntry)
		}
	}
	return nil
}

// Find returns the sealed epoch key of id, or ErrNotInKeyring.
func (s *KeyringShard) Find(id DeviceID) ([]byte, error) {
	i, ok := slices.BinarySearchFunc(s.Entries, id, func(e KeyringEntry, id DeviceID) int {
		return bytes.Compare(e.Device[:], id[:])
	})
	if !ok {
		return nil, fmt.Errorf("%w: device %s has no entry in %q epoch %d; ask the publisher to enroll it (meshota fleet add)", ErrNotInKeyring, id, s.Channel, s.Epoch)
	}
	return s.Entries[i].Sealed, nil
}

// chooseShardBits picks the fewest shards giving a mean of at most
// TargetShardEntries and a largest shard of at most MaxShardEntries.
func chooseShardBits(ids []DeviceID, l Limits) (uint8, error) {
	b := 0
	for len(ids) > TargetShardEntries<<b && b < l.MaxShardBits {
		b++
	}
	for ; b <= l.MaxShardBits; b++ {
		counts := make(map[uint32]int)
		worst := 0
		for _, id := range ids {
			i := ShardIndex(id, uint8(b))
			counts[i]++
			worst = max(worst, counts[i])
		}
		if worst <= l.MaxShardEntries {
			return uint8(b), nil
		}
	}
	return 0, fmt.Errorf("%w: %d devices do not fit 2^%d shards of %d entries", ErrLimitExceeded, len(ids), l.MaxShardBits, l.MaxShardEntries)
}

// buildKeyringBlocks lays out entries (sorted by device) into shard blocks
// and a root block.
func buildKeyringBlocks(channel string, epoch uint64, entries []KeyringEntry, l Limits) (Block, []Block, error) {
	ids := make([]DeviceID, len(entries))
	for i, e := range entries {
		ids[i] = e.Device
	}
	bits, err := chooseShardBits(ids, l)
	if err != nil {
		return Block{}, nil, err
	}
	n := 1 << bits
	root := KeyringRoot{Channel: channel, Epoch: epoch, ShardBits: bits, Shards: make([]byte, 0, 32*n), Devices: uint64(len(entries))}
	shards := make([]Block, n)
	j := 0
	for i := range n {
		k := j
		for k < len(entries) && ShardIndex(entries[k].Device, bits) == uint32(i) {
			k++
		}
		s := KeyringShard{Channel: channel, Epoch: epoch, Index: uint32(i), Entries: entries[j:k]}
		if s.Entries == nil {
			s.Entries = []KeyringEntry{}
		}
		j = k
		data, err := codec.Marshal(&s)
		if err != nil {
			return Block{}, nil, err
		}
		if len(data) > l.MaxShardBytes {
			return Block{}, nil, fmt.Errorf("%w: shard %d is %d bytes, limit %d", ErrLimitExceeded, i, len(data), l.MaxShardBytes)
		}
		shards[i] = NewBlock(data)
		root.Shards = append(root.Shards, shards[i].CID.Hash()[2:]...)
	}
	data, err := codec.Marshal(&root)
	if err != nil {
		return Block{}, nil, err
	}
	if len(data) > l.MaxKeyringRootBytes {
		return Block{}, nil, fmt.Errorf("%w: keyring root is %d bytes, limit %d", ErrLimitExceeded, len(data), l.MaxKeyringRootBytes)
	}
	return NewBlock(data), shards, nil
}
