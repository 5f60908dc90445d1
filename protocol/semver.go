package protocol

import (
	"fmt"
	"strconv"
	"strings"
)

// semver is a parsed Semantic Versioning 2.0.0 version.
type semver struct {
	major, minor, patch uint64
	pre                 []string // pre-release identifiers; build metadata is dropped
}

// ValidateVersion checks that v is a Semantic Versioning 2.0.0 version
// (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], no leading "v").
func ValidateVersion(v string) error {
	_, err := parseSemver(v)
	return err
}

// CompareVersions orders two semantic versions by SemVer 2.0.0 precedence:
// -1 if a < b, 0 if equal (build metadata ignored), +1 if a > b.
func CompareVersions(a, b string) (int, error) {
	x, err := parseSemver(a)
	if err != nil {
		return 0, err
	}
	y, err := parseSemver(b)
	if err != nil {
		return 0, err
	}
	return x.compare(y), nil
}

func parseSemver(v string) (semver, error) {
	bad := func(why string) (semver, error) {
		return semver{}, fmt.Errorf("%w: version %q is not a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD]): %s", ErrInvalidField, v, why)
	}
	rest, build, hasBuild := strings.Cut(v, "+")
	if hasBuild && !validIdents(build, false) {
		return bad("bad build metadata")
	}
	core, pre, hasPre := strings.Cut(rest, "-")
	if hasPre && !validIdents(pre, true) {
		return bad("bad pre-release")
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return bad("need three numbers")
	}
	var n [3]uint64
	for i, p := range parts {
		if !numeric(p) {
			return bad("numbers must be decimal without leading zeros")
		}
		x, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return bad("number out of range")
		}
		n[i] = x
	}
	s := semver{major: n[0], minor: n[1], patch: n[2]}
	if hasPre {
		s.pre = strings.Split(pre, ".")
	}
	return s, nil
}

func numeric(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validIdents(s string, noLeadingZero bool) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		digits := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				digits = false
			default:
				return false
			}
		}
		if noLeadingZero && digits && !numeric(id) {
			return false
		}
	}
	return true
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (a semver) compare(b semver) int {
	if c := cmpU(a.major, b.major); c != 0 {
		return c
	}
	if c := cmpU(a.minor, b.minor); c != 0 {
		return c
	}
	if c := cmpU(a.patch, b.patch); c != 0 {
		return c
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		xn, yn := numeric(x), numeric(y)
		var c int
		switch {
		case xn && yn:
			xi, _ := strconv.ParseUint(x, 10, 64)
			yi, _ := strconv.ParseUint(y, 10, 64)
			c = cmpU(xi, yi)
		case xn:
			c = -1
		case yn:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return cmpU(uint64(len(a.pre)), uint64(len(b.pre)))
}
