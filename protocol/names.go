package protocol

import (
	"fmt"
	"strings"
)

// Payload types of the signature envelopes (crypto.Envelope.PayloadType).
// A signature over one type never verifies as another.
const (
	ManifestPayloadType   = "application/vnd.meshota.manifest.v1+cbor"
	StatusPayloadType     = "application/vnd.meshota.status.v1+cbor"
	EnrollmentPayloadType = "application/vnd.meshota.enrollment.v1+cbor"
)

// Gossipsub topics. The version segment changes only with an incompatible
// change of the messages carried.
const (
	topicPrefix   = "/meshota/v1/"
	manifestTopic = topicPrefix + "manifest/"
	statusTopic   = topicPrefix + "status/"
	// RootTopic carries signed trust roots (crypto's root envelopes) so
	// that a rotation reaches online nodes without a request.
	RootTopic = topicPrefix + "root"
)

// Request/response protocol IDs (libp2p protocol.ID values; untyped so they
// convert without importing libp2p here).
const (
	// ProtocolLatestManifest: LatestManifestRequest → LatestManifestResponse.
	ProtocolLatestManifest = "/meshota/manifest/latest/1.0.0"
	// ProtocolRootChain: RootChainRequest → RootChainResponse.
	ProtocolRootChain = "/meshota/root/chain/1.0.0"
)

// ManifestTopic is the gossipsub topic on which channel's manifests are
// announced. The channel must be valid (ValidateChannel).
func ManifestTopic(channel string) string { return manifestTopic + channel }

// StatusTopic is the gossipsub topic on which devices of channel publish
// their status reports.
func StatusTopic(channel string) string { return statusTopic + channel }

// ChannelOfManifestTopic returns the channel whose manifest topic is topic.
func ChannelOfManifestTopic(topic string) (string, error) {
	return channelOf(topic, manifestTopic)
}

// ChannelOfStatusTopic returns the channel whose status topic is topic.
func ChannelOfStatusTopic(topic string) (string, error) {
	return channelOf(topic, statusTopic)
}

func channelOf(topic, prefix string) (string, error) {
	ch, ok := strings.CutPrefix(topic, prefix)
	if !ok {
		return "", fmt.Errorf("%w: topic %q does not start with %q", ErrInvalidField, topic, prefix)
	}
	if err := ValidateChannel(ch); err != nil {
		return "", err
	}
	return ch, nil
}

// ValidateChannel checks a channel name: 1 to MaxChannelLen bytes of
// lower-case ASCII letters, digits, '.', '_' and '-', starting with a letter
// or digit. Names are therefore safe in topic names, file names and the
// NUL-separated contexts of hashes and AEADs.
func ValidateChannel(name string) error {
	if len(name) == 0 || len(name) > MaxChannelLen {
		return fmt.Errorf("%w: channel name must be 1 to %d characters, got %d", ErrInvalidField, MaxChannelLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: channel name %q: use lower-case letters, digits, '.', '_' and '-' (not first)", ErrInvalidField, name)
		}
	}
	return nil
}
