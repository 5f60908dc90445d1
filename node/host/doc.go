// Package host builds the libp2p host every meshota node runs: TCP and
// QUIC transports, Noise and TLS security, a persisted Ed25519 identity,
// a connection manager and a resource manager sized for small devices,
// static bootstrap peers that are kept connected, and mDNS discovery that
// connects peers on the same LAN with no configuration and remembers them
// as LAN peers.
package host
