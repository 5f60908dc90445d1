package store

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"slices"
)

// A pack file is a sequence of records, each
//
//	magic "MPK1" | kind u8 | 0 u8 | key length u16 | value length u32 |
//	value CRC-32C u32 | header CRC-32C u32 | key | value
//
// (little endian; the header CRC covers the 16 bytes before it and the
// key). Synced appends start at a multiple of 4096 bytes: zeros from the
// end of a record to the next multiple are padding. A put record's value is the block; a tombstone's value is the
// location it deletes: pack number u32 | record offset u64. A torn or
// garbled record ends the pack's valid part: the scan stops there.
const (
	recMagic      = "MPK1"
	recHeaderSize = 20
	recPut        = 1
	recTombstone  = 2
	maxKeyLen     = 1024
	maxValueLen   = 64 << 20
	tombValueLen  = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord reports a record that is not whole and valid.
var errBadRecord = errors.New("pack: bad record")

// appendRecordHead appends a record's header and key; the value follows.
func appendRecordHead(dst []byte, kind byte, key string, value []byte) []byte {
	return appendRecordHeadCRC(dst, kind, key, value, valueCRC(value))
}

// appendRecordHeadCRC is appendRecordHead with the value's CRC-32C already
// computed (valueCRC).
func appendRecordHeadCRC(dst []byte, kind byte, key string, value []byte, vcrc uint32) []byte {
	start := len(dst)
	dst = append(dst, recMagic...)
	dst = append(dst, kind, 0)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(value)))
	dst = binary.LittleEndian.AppendUint32(dst, vcrc)
	h := crc32.Update(crc32.Checksum(dst[start:], castagnoli), castagnoli, []byte(key))
	dst = binary.LittleEndian.AppendUint32(dst, h)
	return append(dst, key...)
}

// valueCRC is the CRC-32C a record of value carries.
func valueCRC(value []byte) uint32 { return crc32.Checksum(value, castagnoli) }

func tombstoneValue(l loc) []byte {
	v := binary.LittleEndian.AppendUint32(nil, l.pack)
	return binary.LittleEndian.AppendUint64(v, uint64(l.off))
}

// record is one decoded record of a pack.
type record struct {
	kind   byte
	key    string
	off    int64  // of the record in its pack
	hlen   uint32 // header + key
	vlen   uint32
	target loc // tombstones: the deleted record
}

func (r record) size() int64 { return int64(r.hlen) + int64(r.vlen) }

// readRecord decodes the record at off of a pack of the given size. With
// verify it reads and checks the value (tombstones' values are always
// read); otherwise only the header and key are read and checked. It
// returns errBadRecord for a torn or garbled record, another error only
// for a failed read.
func readRecord(r io.ReaderAt, off, size int64, verify bool, buf *[]byte) (record, error) {
	var rec record
	head := min(size-off, recHeaderSize+maxKeyLen)
	if head < recHeaderSize {
		return rec, errBadRecord
	}
	b := grow(buf, int(head))
	if _, err := r.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return rec, err
	}
	if string(b[:4]) != recMagic || b[5] != 0 {
		return rec, errBadRecord
	}
	rec.kind = b[4]
	klen := int(binary.LittleEndian.Uint16(b[6:]))
	rec.vlen = binary.LittleEndian.Uint32(b[8:])
	vcrc := binary.LittleEndian.Uint32(b[12:])
	rec.hlen = uint32(recHeaderSize + klen)
	rec.off = off
	switch {
	case rec.kind != recPut && rec.kind != recTombstone,
		klen == 0 || klen > maxKeyLen || rec.vlen > maxValueLen,
		rec.kind == recTombstone && rec.vlen != tombValueLen,
		int64(rec.hlen) > head || off+rec.size() > size:
		return rec, errBadRecord
	}
	h := crc32.Update(crc32.Checksum(b[:16], castagnoli), castagnoli, b[recHeaderSize:rec.hlen])
	if h != binary.LittleEndian.Uint32(b[16:]) {
		return rec, errBadRecord
	}
	rec.key = string(b[recHeaderSize:rec.hlen])
	if !verify && rec.kind == recPut {
		return rec, nil
	}
	v := grow(buf, int(rec.vlen))
	if _, err := r.ReadAt(v, off+int64(rec.hlen)); err != nil {
		if errors.Is(err, io.EOF) {
			return rec, errBadRecord
		}
		return rec, err
	}
	if crc32.Checksum(v, castagnoli) != vcrc {
		return rec, errBadRecord
	}
	if rec.kind == recTombstone {
		rec.target = loc{pack: binary.LittleEndian.Uint32(v), off: int64(binary.LittleEndian.Uint64(v[4:]))}
	}
	return rec, nil
}

func grow(buf *[]byte, n int) []byte {
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	return (*buf)[:n]
}

// scanPack decodes the records of a pack of the given size in order and
// returns the offset where its valid part ends (size when every record is
// whole and valid). An error is a failed read.
func scanPack(r io.ReaderAt, size int64, verify bool, fn func(record)) (int64, error) {
	var buf []byte
	off := int64(0)
	for off < size {
		rec, err := readRecord(r, off, size, verify, &buf)
		if errors.Is(err, errBadRecord) {
			// Zeros up to the next multiple of alignment pad an
			// append; anything else ends the valid part.
			next := min(alignUp(off), size)
			if next == off {
				return off, nil
			}
			b := grow(&buf, int(next-off))
			if _, err := r.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
				return off, err
			}
			if slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
				return off, nil
			}
			off = next
			continue
		}
		if err != nil {
			return off, err
		}
		fn(rec)
		off += rec.size()
	}
	return off, nil
}
