// Package catchup serves and asks the two catch-up protocols of
// protocol/: the latest manifest of a channel, and the trust-root chain
// after a version. A node that was offline during an announcement asks its
// peers on reconnection; every agent and the seed answer from what they
// accepted, exactly as signed, so answers are checked like gossip.
package catchup
