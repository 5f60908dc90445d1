package gossip

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer scoring follows the gossipsub v1.1 guidance, sized for a topic that
// carries a handful of small messages per day per channel: there is no
// steady message rate to reward, so the mesh-delivery penalties (P3, P3b),
// which assume one, are off. What matters is P4: every invalid message
// (a forgery, an oversized or malformed manifest) costs its sender, squared,
// so a flooder falls under the graylist threshold after a few messages.
func scoreParams(whitelist []*net.IPNet) *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:            map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:     100,
		AppSpecificScore:  func(peer.ID) float64 { return 0 },
		AppSpecificWeight: 1,
		// P6: many peers on one IP is the sybil signature on the open
		// Internet, and the normal case behind a site's NAT and on loopback.
		IPColocationFactorWeight:    -10,
		IPColocationFactorThreshold: 8,
		IPColocationFactorWhitelist: whitelist,
		// P7: misbehaviour in the gossip protocol itself (broken promises).
		BehaviourPenaltyWeight: -10,
		BehaviourPenaltyDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:          time.Second,
		DecayToZero:            0.01,
		RetainScore:            30 * time.Minute,
	}
}

func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight: 1,
		// P1: a little credit for staying in the mesh.
		TimeInMeshWeight:  0.01,
		TimeInMeshQuantum: time.Second,
		TimeInMeshCap:     100,
		// P2: credit for being first with a valid message.
		FirstMessageDeliveriesWeight: 1,
		FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
		FirstMessageDeliveriesCap:    10,
		// P4: invalid messages, squared. Ten forgeries give -1000.
		InvalidMessageDeliveriesWeight: -10,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
	}
}

func scoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -50,
		PublishThreshold:            -100,
		GraylistThreshold:           -400,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 5,
	}
}
