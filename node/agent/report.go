package agent

import (
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
