// Package policy holds the device and seed decisions as plain functions
// over plain data, so that the real nodes (node/agent, node/exchange) and
// the fleet simulator (sim/) make them the same way. It imports nothing
// from libp2p.
//
//   - Rollout eligibility (InRollout, RolloutBucket), as specified in
//     docs/PROTOCOL.md: used by node/agent and sim/.
//   - LAN first (SiteGrants): a seed sends each block about once per site,
//     a grant lasting while its peer is being served, and spreads a site's
//     blocks over its active devices (none holds more than ShareSlack
//     chunks' worth of bytes above the site's mean); used by
//     node/exchange's request filter and
//     tracer and by sim/'s seed.
//   - StallTimeout: when a fetch asks every peer again; node/exchange's
//     default and the simulator's re-ask rule.
package policy
