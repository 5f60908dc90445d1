// Package netlab builds throw-away networks of Linux network namespaces for
// tests that must cross a real network stack: sites (LANs) behind shaped
// uplinks, a WAN with the seed on it, packet loss and partitions.
//
// Topology: one switch namespace holds a bridge for the WAN and one per
// site. Each site has a router namespace with one leg on the site bridge
// and one on the WAN bridge; each host is a namespace with one veth to its
// bridge. Rates are tc tbf qdiscs on the egress of the right veth; loss and
// partitions are nftables rules inside the namespaces. The kernel here has
// no netem, so there is no added latency (see FIELD-NOTES.md).
//
// Safety: addresses (10.200.0.0/16 for the WAN, 10.201.0.0/16 for sites)
// exist only inside the namespaces; no namespace has a default route or
// any link to the host's own interfaces, which are never touched. Every
// namespace, and so every link and qdisc, is deleted by Close (registered
// with t.Cleanup), and New removes what a killed earlier run left behind.
package netlab
