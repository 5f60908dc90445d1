package protocol

import "time"

// Limits bound what a hostile message can make a node allocate or accept.
// A zero field means the DefaultLimits value.
type Limits struct {
	MaxManifestBytes    int           // signed manifest envelope
	MaxReportBytes      int           // signed status report envelope
	MaxEnrollmentBytes  int           // signed enrollment record (binary)
	MaxRootBytes        int           // one signed trust root
	MaxCatchupBytes     int           // one catch-up response
	MaxRootChain        int           // roots in one chain response
	MaxReleaseSize      uint64        // plaintext size and block bytes of a release
	MaxBlockCount       uint64        // blocks of a release
	MaxBlockSize        uint64        // largest block (bitswap's own limit)
	MaxShardEntries     int           // devices in one keyring shard
	MaxShardBytes       int           // one keyring shard block
	MaxKeyringRootBytes int           // the keyring root block
	MaxShardBits        int           // keyring root lists 2^bits shards
	MaxVersionLen       int           // semantic version strings
	MaxErrorLen         int           // error string of a status report
	MaxExpiry           time.Duration // expires - now, at most
	MaxClockSkew        time.Duration // created - now, at most
	MaxReportAge        time.Duration // now - report time, at most
}

// DefaultLimits are the values documented in docs/PROTOCOL.md.
var DefaultLimits = Limits{
	MaxManifestBytes:    16 << 10,
	MaxReportBytes:      4 << 10,
	MaxEnrollmentBytes:  8 << 10,
	MaxRootBytes:        64 << 10,
	MaxCatchupBytes:     1 << 20,
	MaxRootChain:        16,
	MaxReleaseSize:      16 << 30,
	MaxBlockCount:       1 << 22,
	MaxBlockSize:        2 << 20,
	MaxShardEntries:     256,
	MaxShardBytes:       512 << 10,
	MaxKeyringRootBytes: 2 << 20,
	MaxShardBits:        15,
	MaxVersionLen:       64,
	MaxErrorLen:         512,
	MaxExpiry:           90 * 24 * time.Hour,
	MaxClockSkew:        5 * time.Minute,
	MaxReportAge:        7 * 24 * time.Hour,
}

// MaxChannelLen is the longest channel name (a protocol constant, not a
// configurable limit: it shapes topic names).
const MaxChannelLen = 64

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	pick(&l.MaxManifestBytes, d.MaxManifestBytes)
	pick(&l.MaxReportBytes, d.MaxReportBytes)
	pick(&l.MaxEnrollmentBytes, d.MaxEnrollmentBytes)
	pick(&l.MaxRootBytes, d.MaxRootBytes)
	pick(&l.MaxCatchupBytes, d.MaxCatchupBytes)
	pick(&l.MaxRootChain, d.MaxRootChain)
	pick(&l.MaxShardEntries, d.MaxShardEntries)
	pick(&l.MaxShardBytes, d.MaxShardBytes)
	pick(&l.MaxKeyringRootBytes, d.MaxKeyringRootBytes)
	pick(&l.MaxShardBits, d.MaxShardBits)
	pick(&l.MaxVersionLen, d.MaxVersionLen)
	pick(&l.MaxErrorLen, d.MaxErrorLen)
	if l.MaxReleaseSize == 0 {
		l.MaxReleaseSize = d.MaxReleaseSize
	}
	if l.MaxBlockCount == 0 {
		l.MaxBlockCount = d.MaxBlockCount
	}
	if l.MaxBlockSize == 0 {
		l.MaxBlockSize = d.MaxBlockSize
	}
	if l.MaxExpiry == 0 {
		l.MaxExpiry = d.MaxExpiry
	}
	if l.MaxClockSkew == 0 {
		l.MaxClockSkew = d.MaxClockSkew
	}
	if l.MaxReportAge == 0 {
		l.MaxReportAge = d.MaxReportAge
	}
	return l
}
