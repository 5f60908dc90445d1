// Package policy holds the device agent's decisions as plain functions over
// plain data, so that the real agent (node/agent) and the fleet simulator
// (sim/) make them the same way. It imports nothing from libp2p.
//
// Today: rollout eligibility, as specified in docs/PROTOCOL.md.
package policy
