// Package codec is meshota's one encoding for wire and on-disk documents:
// deterministic CBOR (RFC 8949 §4.2.1, "core deterministic encoding"),
// decoded strictly and with bounds.
//
// Every package that encodes a document (crypto's envelopes and trust roots,
// content's release index, protocol's manifests, keyrings and reports) goes
// through here, so that one set of rules decides what is canonical and what
// a hostile input may cost. Structs use small integer map keys
// (`cbor:"1,keyasint"`) to keep messages compact; docs/PROTOCOL.md lists them.
package codec
