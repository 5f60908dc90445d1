// Package gossip runs meshota's announcement plane on go-libp2p-pubsub:
// gossipsub with peer scoring, one topic per channel, and a validator on
// every topic so that nothing is delivered to the application or forwarded
// to other peers before it passed meshota's protocol checks.
//
// The package knows nothing of manifests: callers hand it a Validator (a
// pure verdict over the bytes, from protocol/) and get back only messages
// that validator accepted. A rejected message lowers the sender's score
// (gossipsub's P4, invalid deliveries), so a peer that floods forgeries is
// pruned from the mesh and eventually graylisted.
package gossip
