// Package agent is the device daemon of one channel: it learns of releases
// (gossip and catch-up), decides whether it is in their rollout, fetches
// its keyring shard, the index and the missing blocks from the mesh,
// assembles into staging, installs atomically through node/install and
// reports each state change, signed, on the channel's status topic.
//
// Everything the agent acts on went through protocol's validators first.
// Its persistent state (trusted roots, the highest accepted manifest, what
// is installed, what failed) is one statefile, written before every step
// that depends on it, so a restart at any instant resumes and never
// regresses: blocks already verified stay in the store, the anti-rollback
// mark never goes down, a failed release is not retried in a loop.
//
// Devices outside a release's rollout still fetch its blocks (by the
// cleartext block list, no key needed) and serve them, so that widening
// the rollout later costs the seed nothing.
package agent
