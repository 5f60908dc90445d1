package agent

import (
	"bytes"
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/gossip"
	"github.com/meshota/meshota/protocol"
)

// report signs and publishes a status report and emits the event.
func (a *Agent) report(ctx context.Context, m *protocol.Manifest, s protocol.State, cause error, t Traffic, took time.Duration) {
	a.emit(Event{State: s, Sequence: m.Sequence, Version: m.Version, Err: cause})
	r := &protocol.StatusReport{
		Device:         a.id,
		Channel:        m.Channel,
		Sequence:       m.Sequence,
		Version:        m.Version,
		State:          s,
		Time:           a.cfg.Now(),
		BytesFromPeers: t.LAN + t.Peer,
		BytesFromLAN:   t.LAN,
		BytesFromSeed:  t.Seed,
		DurationMillis: uint64(took.Milliseconds()),
	}
	if cause != nil {
		r.Error = truncate(cause.Error(), maxErrorLen(a.cfg.Limits))
	}
	a.publish(r)
}

// publish adds the alarms that hold to r, signs it and announces it,
// repeated until the next report replaces it.
func (a *Agent) publish(r *protocol.StatusReport) {
	a.mu.Lock()
	r.ManifestExpired, r.Equivocation = a.frozen, a.equivocation
	a.lastReport = r
	a.mu.Unlock()
	data, err := protocol.SignStatusReport(r, a.cfg.SigningKey, a.cfg.Limits)
	if err != nil {
		a.log.Error("cannot sign status report", "err", err)
		return
	}
	if a.status == nil {
		return
	}
	// Gossip may lose a message; the latest report is repeated until the
	// next one replaces it, so the seed's view converges.
	a.mu.Lock()
	if a.stopReport != nil {
		a.stopReport()
	}
	rctx, cancel := context.WithCancel(a.runCtx)
	a.stopReport = cancel
	a.mu.Unlock()
	go a.status.Announce(rctx, data, a.cfg.ReportInterval)
}

// raise publishes the last status report again, now, with the alarms that
// hold now. Before any report it describes the installed release (or the
// manifest accepted, with nothing installed yet).
func (a *Agent) raise() {
	a.mu.Lock()
	var r protocol.StatusReport
	switch {
	case a.lastReport != nil:
		r = *a.lastReport
	case a.st.Installed != nil:
		r = protocol.StatusReport{Device: a.id, Channel: a.cfg.Channel, Sequence: a.st.Installed.Sequence,
			Version: a.st.Installed.Version, State: protocol.StateInstalled}
	default:
		r = protocol.StatusReport{Device: a.id, Channel: a.cfg.Channel, State: protocol.StateDownloading}
		if a.st.Mark != nil {
			r.Sequence = a.st.Mark.Sequence
		}
	}
	a.mu.Unlock()
	r.Time = a.cfg.Now()
	a.publish(&r)
}

// equivocated records an equivocation: a second, different manifest with
// the sequence of one accepted (a stolen release key or a faulty
// publisher). It logs it and reports it, so that the seed raises a
// fleet-wide alarm (docs/SECURITY.md row 13).
func (a *Agent) equivocated(e *protocol.EquivocationError, from peer.ID) {
	eq := protocol.EquivocationOf(e)
	a.mu.Lock()
	old := a.equivocation
	known := old != nil && old.Sequence == eq.Sequence && bytes.Equal(old.Accepted, eq.Accepted) && bytes.Equal(old.Offered, eq.Offered)
	if !known {
		a.equivocation = eq
	}
	a.mu.Unlock()
	if known {
		return
	}
	a.log.Error("EQUIVOCATION: two different manifests with one sequence; reporting it", "from", from, "err", e)
	a.raise()
}

// watchExpiry raises the frozen alarm when the newest manifest accepted
// expires before a newer one arrives (docs/SECURITY.md row 3): whoever
// withholds new manifests from the device cannot keep that quiet.
func (a *Agent) watchExpiry(ctx context.Context) {
	for {
		a.mu.Lock()
		data, frozen := a.st.Manifest, a.frozen
		a.mu.Unlock()
		var (
			m       *protocol.Manifest
			timer   *time.Timer
			expired <-chan time.Time
		)
		if data != nil && !frozen {
			var err error
			if m, err = protocol.DecodeManifest(data, a.cfg.Limits); err == nil {
				timer = time.NewTimer(m.Expires.Sub(a.cfg.Now()))
				expired = timer.C
			}
		}
		select {
		case <-ctx.Done():
		case <-a.accepted:
		case <-expired:
			a.freeze(data, m)
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// freeze raises the frozen alarm if data is still the newest manifest.
func (a *Agent) freeze(data []byte, m *protocol.Manifest) {
	a.mu.Lock()
	still := bytes.Equal(a.st.Manifest, data)
	if still {
		a.frozen = true
	}
	a.mu.Unlock()
	if !still {
		return
	}
	a.log.Warn("the newest manifest accepted has expired and no newer one arrived: this device may be cut off from updates",
		"sequence", m.Sequence, "version", m.Version, "expired", m.Expires)
	a.raise()
}

func maxErrorLen(l protocol.Limits) int {
	if l.MaxErrorLen > 0 {
		return l.MaxErrorLen
	}
	return protocol.DefaultLimits.MaxErrorLen
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// validateStatusGossip passes on well-formed signed status reports of this
// channel. A device cannot check who is enrolled (only the publisher and
// the seed know the fleet), so it checks what it can — size, envelope,
// payload type — and the seed does the rest; see docs/SECURITY.md.
func (a *Agent) validateStatusGossip(_ context.Context, _ peer.ID, data []byte) gossip.Verdict {
	l := a.cfg.Limits
	max := l.MaxReportBytes
	if max == 0 {
		max = protocol.DefaultLimits.MaxReportBytes
	}
	env, err := crypto.ParseEnvelope(data, max)
	if err != nil || env.PayloadType != protocol.StatusPayloadType || len(env.Signatures) != 1 {
		return gossip.Reject
	}
	return gossip.Accept
}
