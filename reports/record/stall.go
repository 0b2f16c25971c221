package record

// Window is a span of the run in which the load sent nothing while it
// should have: the load generator itself stalled, so nothing it measured
// there can be trusted.
type Window struct {
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	Phase   string  `json:"phase"`
}
