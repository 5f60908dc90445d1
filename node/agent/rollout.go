package agent

import (
	"crypto/sha256"
	"encoding/binary"
)

// inRollout is the rollout rule of docs/PROTOCOL.md: bucket = first 8
// bytes big-endian of SHA-256("meshota/v1 rollout\x00" || channel || 0x00
// || deviceID) mod 10000; eligible iff bucket < basis points.
//
// TODO(policy): node/policy is to hold this and the agent's other decisions
// for both the agent and the simulator; switch to it when it lands.
func inRollout(channel, deviceID string, basisPoints uint32) bool {
	h := sha256.New()
	h.Write([]byte("meshota/v1 rollout\x00"))
	h.Write([]byte(channel))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])%10000 < uint64(basisPoints)
}
