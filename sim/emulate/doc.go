// Package emulate is the emulation level of the fleet simulator: it runs a
// real seed (node/seed, fed by a real node/publisher) and N real device
// agents (node/agent with node/install, node/gossip, node/exchange and an
// on-disk content/store each) in one process, over go-libp2p's mocknet
// instead of sockets, and measures when each device installs a release.
//
// The topology is sites of devices: every device has its own link to the
// seed (Spec.SeedLink), and the devices of one site are linked to each
// other (Spec.LANLink); devices of different sites are not linked. Each
// site is a private /24 (10.a.b.0/24, device d at .d+1), so that
// exchange.SiteOf and the seed's once-per-site filter classify peers as
// they would on a real network; the seed sits at 198.51.100.1.
//
// What mocknet's links do (go-libp2p v0.51, p2p/net/mock): every Write on
// a stream is delayed by the link's latency plus the wait its token bucket
// imposes; the bucket is shared by both directions and all streams of the
// link and holds at most one second of bandwidth. Run re-applies every
// link's options just before the release is imported, which empties the
// buckets, so that no link starts the rollout with a second of saved-up
// burst: from then on a link delivers at most Bandwidth × t bytes in time
// t. A link that goes idle during the run does save up to a second again,
// so a fast LAN link can deliver a whole small release at once after a
// pause. Latency is added per write, not per round trip of a window, and
// there is no loss, no congestion control and no per-direction capacity:
// the flow-level simulator in sim/ is calibrated against this package,
// and both against the netns tests, not against each other alone.
//
// Time is real. A fake clock is not practical here: bitswap, gossipsub,
// the libp2p host and mocknet's own delivery all read time.Now and start
// timers and goroutines of their own, and none takes a clock, so the
// emulation runs in wall time and its figures carry scheduler noise,
// which grows with the number of devices per core. Measured figures and
// the largest fleet that runs in reasonable time on a 2-core machine are
// in docs/SIMULATOR.md.
//
// Identities (libp2p keys and device signing keys) and the release bytes
// come from Spec.Seed. The devices' encryption keys, the publisher's keys
// and therefore the release's encrypted blocks are fresh in every run:
// their constructors take no randomness source.
package emulate
