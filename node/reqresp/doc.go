// Package reqresp carries one request and one response per libp2p stream,
// each a length-prefixed byte string with a size bound and a deadline. The
// catch-up protocols (latest manifest of a channel, trust-root chain) use
// it; what the bytes mean is protocol/'s business.
//
// Frame: an unsigned varint length, then that many bytes. A reader refuses a
// length over its bound before reading (or allocating) the body.
package reqresp
