// Package status aggregates the fleet's status reports on the seed node and
// serves them: /api/status (JSON, what `meshota status` reads), /metrics
// (Prometheus) and /healthz.
//
// Reports reach the aggregator only after protocol/ validated them (signed
// by an enrolled device's key); the aggregator keeps the newest report per
// device and derives everything else from those.
package status
