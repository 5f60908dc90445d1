// Package seed is the publisher's seed node. It holds no secret of the
// publisher: only trust roots, signed manifests, keyrings (sealed keys) and
// encrypted blocks. It imports releases as bundles (admin API or CAR file),
// pins and serves their blocks, announces the latest manifest of every
// channel on gossip (and again periodically), answers catch-up requests,
// and aggregates the fleet's status reports for `meshota status`.
package seed
