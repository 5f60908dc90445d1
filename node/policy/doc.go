// Package policy holds the device and seed decisions as plain functions
// over plain data, so that the real nodes (node/agent, node/exchange) and
// the fleet simulator (sim/) make them the same way. It imports nothing
// from libp2p.
//
//   - Rollout eligibility (InRollout, RolloutBucket), as specified in
//     docs/PROTOCOL.md: used by node/agent and sim/.
//   - LAN first (SiteGrants): a seed sends each block about once per site;
//     used by node/exchange's request filter and by sim/'s seed.
package policy
