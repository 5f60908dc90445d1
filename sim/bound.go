package sim

import "math"

// Bound is the analytic lower bound on the time for every device to hold
// the release (Kumar & Ross 2006, extended to sites), with its terms.
type Bound struct {
	Time float64 // the largest term, in seconds
	// The terms: the seed must send every byte no device holds
	// (Seed); the slowest device must receive what it lacks (Device); all
	// missing bytes must be uploaded by someone (Fleet); every byte a site
	// lacks must cross its downlink (Site) and be uploaded by the seed or
	// another site (Sites); the last rollout stage must have begun (Stage).
	Seed, Device, Fleet, Site, Sites, Stage float64
	// Central is the time a central server needs: every device's missing
	// bytes from the seed alone, N·F/u_s when its uplink is the bottleneck
	// (else a site's downlink or a device's own link).
	Central float64
}

func (s *state) bound() Bound {
	sc := s.sc
	us := float64(sc.Seed.Uplink)
	var b Bound
	held := make([]bool, s.nChunks) // by some device at the start
	siteLack := make([]float64, len(s.sites))
	var needTotal, uploads, maxNeed, maxSiteNeed float64
	for si, members := range s.sites {
		siteNeed := 0.0
		for c := range s.nChunks {
			if s.lanHas(int32(si), int32(c)) {
				held[c] = true
			} else {
				siteLack[si] += s.chunkLen[c]
			}
		}
		for _, d := range members {
			if s.malicious(d) {
				continue
			}
			need := 0.0
			for c := range s.nChunks {
				if !s.has(d, int32(c)) {
					need += s.chunkLen[c]
				}
			}
			needTotal += need
			siteNeed += need
			maxNeed = max(maxNeed, need)
			uploads += float64(s.devUp)
		}
		maxSiteNeed = max(maxSiteNeed, siteNeed)
	}
	unheld := 0.0
	for c, h := range held {
		if !h {
			unheld += s.chunkLen[c]
		}
	}
	sumLack, maxLack := 0.0, 0.0
	for _, l := range siteLack {
		sumLack += l
		maxLack = max(maxLack, l)
	}
	b.Seed = unheld / us
	b.Device = maxNeed / float64(s.devDown)
	b.Fleet = needTotal / (us + uploads)
	b.Site = maxLack / float64(s.siteDown)
	b.Sites = sumLack / (us + float64(len(s.sites))*float64(sc.Sites.Uplink))
	b.Stage = sc.Rollout[len(sc.Rollout)-1].At.Seconds()
	b.Time = max(b.Seed, b.Device, b.Fleet, b.Site, b.Sites, b.Stage)
	perFlow := min(float64(s.devDown), s.wanCap, float64(s.siteDown))
	b.Central = max(needTotal/us, maxNeed/perFlow, maxSiteNeed/float64(s.siteDown), b.Stage)
	if math.IsNaN(b.Time) {
		b.Time = 0
	}
	return b
}
