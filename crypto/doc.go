// Package crypto holds meshota's cryptography, all of it built from Go's
// standard library (ed25519, hpke, mlkem, aes/cipher GCM, hkdf, sha256):
// no primitive is implemented here.
//
//   - Signing keys (SigningKey, PublicKey, KeyID) and their files
//     (WriteSigningKeyFile, ReadSigningKeyFile: mode 0600, never overwritten).
//   - Signature envelopes (Envelope, Sign, ParseEnvelope): DSSE-style, the
//     signatures cover PAE(payload type, payload), and VerifyThreshold counts
//     each distinct public key of a Role once.
//   - The trust root (Root, SignRoot, ParseRoot, VerifyInitialRoot,
//     UpdateRoot, WalkRoots): root N+1 needs a threshold of root N's root
//     role and of its own; the newest root must not be expired.
//   - Device keys and key wrapping (DeviceKey, DevicePublicKey, SealKey,
//     OpenKey): HPKE (RFC 9180) with hybrid ML-KEM-768 + X25519 by default,
//     X25519 for very small devices, HKDF-SHA256 and AES-256-GCM; the HPKE
//     info binds channel and epoch.
//   - Symmetric encryption: Seal/Open (random nonce, for release keys and
//     index pages) and the convergent chunk AEAD (DeriveChunkKey, SealChunk,
//     OpenChunk).
//
// Verification is pure: bytes, trusted state and a reference time in, a
// verdict out. docs/CRYPTO.md specifies every format and what convergent
// encryption reveals.
package crypto
