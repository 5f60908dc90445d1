package policy

import (
	"crypto/sha256"
	"encoding/binary"
)

// MaxBasisPoints is the whole fleet.
const MaxBasisPoints = 10000

// RolloutBucket places a device of a channel in [0, 10000): the first 8
// bytes, big-endian, of SHA-256("meshota/v1 rollout\x00" || channel ||
// 0x00 || deviceID), modulo 10000 (docs/PROTOCOL.md). The bucket depends
// only on the channel and the device, so a device keeps its place in every
// release of the channel.
func RolloutBucket(channel, deviceID string) uint32 {
	h := sha256.New()
	h.Write([]byte("meshota/v1 rollout\x00"))
	h.Write([]byte(channel))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	return uint32(binary.BigEndian.Uint64(h.Sum(nil)[:8]) % MaxBasisPoints)
}

// InRollout tells whether a device is in a rollout of basisPoints
// (0..10000) of the fleet. Raising basisPoints only ever adds devices.
func InRollout(channel, deviceID string, basisPoints uint32) bool {
	return BucketInRollout(RolloutBucket(channel, deviceID), basisPoints)
}

// BucketInRollout is InRollout for a bucket computed once (the simulator
// keeps every device's bucket rather than hashing at each stage).
func BucketInRollout(bucket, basisPoints uint32) bool { return bucket < basisPoints }
