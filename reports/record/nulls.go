package record

import (
	"encoding/json"
)

// report.json writes null where a value does not exist — a latency of a
// phase without a request, the verification time of a step that never
// verified, a pid never known — rather than 0 or "". The Go values keep
// their zero; reading null back gives it again.

func nullIf[T comparable](v T, absent bool) *T {
	if absent {
		return nil
	}
	return &v
}

func nullIfZero[T comparable](v T) *T {
	var zero T
	return nullIf(v, v == zero)
}

// MarshalJSON writes null for the latencies and rate of a phase in which no
// request was sent.
func (p Phase) MarshalJSON() ([]byte, error) {
	type plain Phase
	none := p.Requests == 0
	return json.Marshal(struct {
		plain
		P99Ms *float64 `json:"p99_ms"`
		P50Ms *float64 `json:"p50_ms"`
		P90Ms *float64 `json:"p90_ms"`
		MaxMs *float64 `json:"max_ms"`
		Rate  *float64 `json:"rate"`
	}{plain(p), nullIf(p.P99Ms, none), nullIf(p.P50Ms, none), nullIf(p.P90Ms, none), nullIf(p.MaxMs, none), nullIf(p.Rate, p.LoadMs == 0)})
}

// MarshalJSON writes null for a step's pid when none was known and its
// verification time when it never verified. Its error stays a string ("":
// none), as schema 1 has it.
func (st Step) MarshalJSON() ([]byte, error) {
	type plain Step
	return json.Marshal(struct {
		plain
		PID        *int     `json:"pid"`
		VerifiedMs *float64 `json:"verified_ms"`
	}{plain(st), nullIfZero(st.PID), nullIf(st.VerifiedMs, !st.Verified && st.VerifiedMs == 0)})
}

// MarshalJSON writes null for latencies when no request was answered.
func (l Latency) MarshalJSON() ([]byte, error) {
	none := l == Latency{}
	return json.Marshal(struct {
		P50Ms *float64 `json:"p50_ms"`
		P90Ms *float64 `json:"p90_ms"`
		P99Ms *float64 `json:"p99_ms"`
		MaxMs *float64 `json:"max_ms"`
	}{nullIf(l.P50Ms, none), nullIf(l.P90Ms, none), nullIf(l.P99Ms, none), nullIf(l.MaxMs, none)})
}

// MarshalJSON writes null for the stall of a scenario with no phase.
func (s Stall) MarshalJSON() ([]byte, error) {
	if s.Phase == "" {
		return []byte("null"), nil
	}
	type plain Stall
	return json.Marshal(plain(s))
}

// MarshalJSON writes null for what a scenario that sent no request, or
// never started, does not have: its rate, load times, load path and start.
func (s Scenario) MarshalJSON() ([]byte, error) {
	type plain Scenario
	none := s.Requests.Total == 0
	return json.Marshal(struct {
		plain
		LoadPath    *string  `json:"load_path"`
		StartWall   *string  `json:"start_wall"`
		LoadStartMs *float64 `json:"load_start_ms"`
		LoadEndMs   *float64 `json:"load_end_ms"`
		EndMs       *float64 `json:"end_ms"`
		Rate        *float64 `json:"rate"`
	}{plain(s), nullIfZero(s.LoadPath), nullIfZero(s.StartWall), nullIf(s.LoadStartMs, none), nullIf(s.LoadEndMs, none),
		nullIf(s.EndMs, none), nullIf(s.Rate, none)})
}
