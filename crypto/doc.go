// Package crypto holds meshota's cryptography, all of it built from Go's
// standard library (ed25519, hpke, mlkem, aes/cipher GCM, hkdf, sha256):
// publisher signing keys and threshold signature envelopes, the trust root
// and its rotation, device key pairs and HPKE key wrapping, and the
// convergent per-chunk AEAD. No primitive is implemented here.
package crypto
