package record

import ()

// Schema is the version of report.json's contract.
const Schema = 1

// Verdicts of a scenario.
const (
	VerdictPass  = "pass"  // ran, and met its expectation
	VerdictFail  = "fail"  // ran, and did not meet its expectation
	VerdictError = "error" // could not run, or its premises did not hold: nothing can be concluded
)

// Report is DIR/report.json: the contract in design.md, plus extra fields.
type Report struct {
	Schema int `json:"schema"`

	// InsecureArchive says the builds were resolved with --insecure-archive:
	// the Debian suites' signatures were not checked (absent otherwise).
	InsecureArchive bool `json:"insecure_archive,omitempty"`

	From      string     `json:"from"`
	To        string     `json:"to"`
	Load      Load       `json:"load"`
	Scenarios []Scenario `json:"scenarios"` // with --repeat: every repeat of the candidate pair, in the order they ran
	// FromBuild and ToBuild say what the specs resolved to: exact version,
	// suite, sha256 (null in records written before builds were resolved).
	FromBuild *BuildRef `json:"from_build"`
	ToBuild   *BuildRef `json:"to_build"`

	// Verdict is the one field a gate reads: the worst of the gates — each
	// scenario's own verdict, or with a baseline, each comparison's.
	Verdict string `json:"verdict"`
	Counts  Counts `json:"counts"` // verdicts of the gates Verdict is the worst of
	// Gate says what Verdict and Counts are over: "scenarios" (each run of
	// each scenario must meet its expectation) or "baseline" (each scenario's
	// candidate must be no worse than the baseline; see Comparisons).
	Gate       string      `json:"gate"`
	Provenance *Provenance `json:"provenance"` // null when the run did not record it
	Repeat     int         `json:"repeat"`     // runs of each scenario per pair
	// Aggregates sum each scenario's repeats per pair: drops per 10,000
	// requests with a 95% confidence interval, spread of the stalls.
	Aggregates []Aggregate `json:"aggregates"`
	// Baseline is the baseline pair's runs (null without --baseline).
	Baseline *Baseline `json:"baseline"`
	// Comparisons judge each scenario's candidate against the baseline (null
	// without --baseline).
	Comparisons []Comparison `json:"comparisons"`
	// Site is the user's configuration tree the run was pointed at (run
	// --config-dir): listeners, upstreams, what was added, what was not
	// run; absent with one nginx.conf.
	Site *Site `json:"site,omitempty"`
}

// Gates (Report.Gate).
const (
	GateScenarios = "scenarios"
	GateBaseline  = "baseline"
)

// Baseline is the baseline pair and its runs.
type Baseline struct {
	From      string     `json:"from"`
	To        string     `json:"to"`
	Scenarios []Scenario `json:"scenarios"`
}

// Thresholds are the limits a scenario was judged by.
type Thresholds struct {
	MaxStallMs      *float64  `json:"max_stall_ms"`      // null: no limit
	MinRateFraction float64   `json:"min_rate_fraction"` // of the configured rate, in every phase of MinRatePhaseMs or more
	MinRatePhaseMs  float64   `json:"min_rate_phase_ms"`
	SilentWindowMs  float64   `json:"silent_window_ms"` // the load must send something in every such window
	SteadyMs        float64   `json:"steady_ms"`        // load before the first step
	ExpectDrops     *DropSpec `json:"expect_drops"`     // null for zero-drops
	// Observer are the limits of a healthy observer's window (null: a
	// record made before the observer).
	Observer *ObserverLimits `json:"observer"`
}

// Scenario is one scenario's record, metrics and verdict.
type Scenario struct {
	Name        string      `json:"name"`
	From        string      `json:"from"` // the builds this scenario ran (broken-build: the broken one)
	To          string      `json:"to"`
	FromBuild   *BuildRef   `json:"from_build"` // what From and To resolved to
	ToBuild     *BuildRef   `json:"to_build"`
	Pair        string      `json:"pair,omitempty"` // with --repeat or --baseline: candidate or baseline
	Site        *Site       `json:"site,omitempty"` // the listeners as this scenario's container published them (run --config-dir)
	Repeat      int         `json:"repeat,omitempty"`
	Thresholds  Thresholds  `json:"thresholds"`
	Expect      string      `json:"expect"`
	Verdict     string      `json:"verdict"`
	Reasons     []string    `json:"reasons"`
	Requests    Requests    `json:"requests"`
	Dropped     int         `json:"dropped"`
	Connections Connections `json:"connections"`
	Slow        Slow        `json:"slow"`
	Steps       []Step      `json:"steps"`
	Phases      []Phase     `json:"phases"`
	Failures    []Failure   `json:"failures"`

	// Extras, beyond the contract.
	Retried     int       `json:"retried"`         // requests net/http replayed after a server close (each a drop)
	Drops       []string  `json:"drops"`           // what was lost, phase by phase, in words
	Causes      []Cause   `json:"causes"`          // why, from the step that opened the phase and the load: nginx's behaviour, not the harness's
	Problems    []string  `json:"problems"`        // what makes the record incomplete (each makes the verdict error)
	Notes       []string  `json:"notes,omitempty"` // what a reader should know, no bearing on the verdict
	Error       string    `json:"error,omitempty"` // error.txt: why the scenario could not run
	Load        Load      `json:"load"`
	LoadPath    string    `json:"load_path"`
	StartWall   string    `json:"start_wall"`
	LoadStartMs float64   `json:"load_start_ms"` // first request sent
	LoadEndMs   float64   `json:"load_end_ms"`   // last request sent
	EndMs       float64   `json:"end_ms"`        // last response received
	Rate        float64   `json:"rate"`          // requests per second achieved between the first and last request
	Latency     Latency   `json:"latency"`
	Final       *Final    `json:"final"`
	Timeline    *Timeline `json:"timeline,omitempty"`

	// The plan and the thresholds the scenario was judged by (from meta.json).
	SteadyMs     float64       `json:"steady_ms"`
	PlannedSteps []PlannedStep `json:"planned_steps"`
	MaxStallMs   float64       `json:"max_stall_ms"`
	ExpectDrops  *DropSpec     `json:"expect_drops"`
	// KnownLosses are the losses the scenario is known to cause (meta.json),
	// Strict says whether they fail it, and KnownLossSeen are those the run
	// had: a pass with a known loss seen is not a clean pass.
	KnownLosses   []KnownLoss     `json:"known_losses,omitempty"`
	Strict        bool            `json:"strict,omitempty"`
	KnownLossSeen []KnownLossSeen `json:"known_losses_seen,omitempty"`
	Ended         bool            `json:"ended"` // end.json was written: the run finished
	// Stall is the longest a client waited in any phase, and where.
	Stall Stall `json:"stall"`
	// Held is what the causing step of a "drops" expectation found in flight.
	Held *Held `json:"held,omitempty"`
	// LongConnections are the long-held connections (long downloads,
	// WebSockets) beside the drain they must span: nil when the plan marks
	// no drain (a record made before drains were marked, or a scenario
	// with none).
	LongConnections *LongConnections `json:"long_connections,omitempty"`
	// Silent are windows in which the load sent nothing while it should have
	// (the first few of SilentCount): the load itself stalled there.
	Silent      []Window `json:"silent_windows,omitempty"`
	SilentCount int      `json:"silent_windows_count"`
	// Faults are the faults injected during the run (faults.jsonl).
	Faults []FaultRecord `json:"faults"`
	// Traffic is one row per traffic kind (meta.json's plan), each
	// accounted on its own from the records; Dropped is their sum plus the
	// long downloads cut.
	Traffic []TrafficRow `json:"traffic"`
	// Targets is one row per target of a user's targets file (--targets),
	// in the file's order.
	Targets []TargetRow `json:"targets,omitempty"`
	// Witness is nginx's own record of every request reconciled with the
	// client's, and who served when (null for a record built before it).
	Witness *Witness `json:"witness"`
	// Observer is the observer's health over the run (observer.jsonl; null
	// in a record made before it): a stall is nginx's only where the
	// observer could see.
	Observer *Observer `json:"observer"`
	// Deaths are the nginx processes that died of something the plan did
	// not do: an exit on a signal no step or fault sent it, or a pid gone
	// before any step retired it. Each fails the scenario.
	Deaths []Death `json:"deaths,omitempty"`
}

// Death is one nginx process that died unplanned, with the evidence.
type Death struct {
	PID  int    `json:"pid"`
	Role string `json:"role"` // as the process table or nginx's error log named it: master, worker, "new binary process"…
	// Master is the master it belonged to (0: unknown); Generation is its
	// worker set (old-1, new-1…; "unknown" when never sampled with one).
	Master     int    `json:"master,omitempty"`
	Generation string `json:"generation,omitempty"`
	// Signal is the signal nginx's error log says it died of (0: the log
	// quoted in the record does not say: it was seen gone only).
	Signal int `json:"signal,omitempty"`
	// FromMs and ToMs bound when it died on the run's clock: the last
	// moment it was seen alive (or the quoted log's window began) and the
	// first it was seen gone (or the log was read).
	FromMs float64 `json:"from_ms"`
	ToMs   float64 `json:"to_ms"`
	// Evidence is nginx's log line, or where the process tables lost it.
	Evidence string `json:"evidence"`
}

// LongConnections are the long-held connections of a run and the drain
// they must span: a connection held by the workers the drain-starting step
// drains (in flight when it was sent) must still be in flight when the
// drain-ending step is sent, else nothing proves those workers drained it.
type LongConnections struct {
	Drain       Drain            `json:"drain"`
	Connections []LongConnection `json:"connections"`
}

// Drain is the pair of steps between which the old workers drain.
type Drain struct {
	StartStep     string  `json:"start_step"`
	StartSignal   string  `json:"start_signal"`
	StartSentMs   float64 `json:"start_sent_ms"`
	EndStep       string  `json:"end_step"`
	EndSignal     string  `json:"end_signal"`
	EndSentMs     float64 `json:"end_sent_ms"`
	EndVerifiedMs float64 `json:"end_verified_ms"`
}

// LongConnection is one long-held connection against the drain.
type LongConnection struct {
	Kind    string  `json:"kind"` // "download" or "websocket"
	ID      int     `json:"id"`
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	// Outcome: completed, cut (by the server: a drop), cancelled (by the
	// client), or for a WebSocket its end (loadgen's WSEnded…).
	Outcome string `json:"outcome"`
	Phase   string `json:"phase"` // the phase it ended in
	// Held: in flight when the drain-starting step was sent (held by the
	// workers it drains). Spans: held, and still in flight when the
	// drain-ending step was sent, or cut by the server before (a drop).
	Held  bool `json:"held"`
	Spans bool `json:"spans"`
	// HeldMs is how long a download stopped reading its tail until the
	// drain-ending step was sent (loadgen's Slow.HoldTail; 0: never).
	HeldMs float64 `json:"held_ms,omitempty"`
	// NginxEndMs is when nginx logged the download done (its last byte
	// written to the socket), on the run's clock; 0 when its log has no
	// line for it. A download nginx ended before the drain-ending step
	// was sent does not span the drain, whenever the client read it.
	NginxEndMs float64 `json:"nginx_end_ms,omitempty"`
}

// Stall names the phase with the longest stall and its length.
type Stall struct {
	Phase string  `json:"phase"`
	Ms    float64 `json:"ms"`
}

// Held is what was in flight when the step that opens the drops phase acted:
// connections open at any moment between its sending and its verification
// (the signal lands somewhere in between), long downloads under way when it
// was sent, and how many of those downloads were cut.
type Held struct {
	Step              string  `json:"step"`
	SentMs            float64 `json:"sent_ms"`
	VerifiedMs        float64 `json:"verified_ms"`
	Connections       int     `json:"connections"`
	Downloads         int     `json:"downloads"`
	DownloadsCut      int     `json:"downloads_cut"`
	KeptDownloads     int     `json:"kept_downloads"`      // started before DropSpec.KeepDownloadsBefore
	KeptDownloadsDone int     `json:"kept_downloads_done"` // of those, completed
}

// Requests counts the load's requests (long downloads not included).
type Requests struct {
	Total     int `json:"total"`
	OK        int `json:"ok"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"` // given up by the client as the load stopped: neither ok nor a drop
}

// Connections counts how the connections the load opened ended, from
// connections.jsonl. The contract's fields are disjoint: Reset counts resets
// with or without a request outstanding; ResetUnderRequest and ResetIdle split it.
type Connections struct {
	Opened             int `json:"opened"`
	ClosedByServerIdle int `json:"closed_by_server_idle"`
	ClosedUnderRequest int `json:"closed_under_request"`
	Reset              int `json:"reset"`
	Refused            int `json:"refused"`

	ResetUnderRequest int `json:"reset_under_request"`
	ResetIdle         int `json:"reset_idle"`
	DialError         int `json:"dial_error"`
	ClosedByClient    int `json:"closed_by_client"`
	OpenAtEnd         int `json:"open_at_end"`
	Retried           int `json:"retried"` // sum of ConnRecord.Retried
}

// Slow counts the long downloads that span the transitions.
type Slow struct {
	Started   int `json:"started"`
	Completed int `json:"completed"`
	Cut       int `json:"cut"`
	Cancelled int `json:"cancelled"` // cancelled by the client before they ended: nothing can be said of them
}

// Step is one signal step as the driver sent and verified it.
type Step struct {
	Name       string  `json:"name"`
	Signal     string  `json:"signal"`
	PID        int     `json:"pid"`
	PIDs       []int   `json:"pids,omitempty"` // every pid signalled (events.jsonl)
	SentMs     float64 `json:"sent_ms"`
	VerifiedMs float64 `json:"verified_ms"`
	Verified   bool    `json:"verified"`
	Error      string  `json:"error"`

	Expected      string   `json:"expected,omitempty"`
	ExpectedCause string   `json:"expected_cause,omitempty"`
	Phase         string   `json:"phase"`
	LogLines      []string `json:"log_lines,omitempty"`
}

// Phase is the span between two steps, with what happened in it.
type Phase struct {
	Name     string  `json:"name"`
	StartMs  float64 `json:"start_ms"`
	EndMs    float64 `json:"end_ms"`
	Requests int     `json:"requests"`
	Failed   int     `json:"failed"`
	// FailedAcross are the failed requests sent in this phase that were
	// still in flight when the next one began: the next phase's step may
	// be what failed them (a KILL cuts what is in flight).
	FailedAcross int     `json:"failed_across,omitempty"`
	P99Ms        float64 `json:"p99_ms"`

	OK            int            `json:"ok"`
	P50Ms         float64        `json:"p50_ms"`
	P90Ms         float64        `json:"p90_ms"`
	MaxMs         float64        `json:"max_ms"`
	LoadMs        float64        `json:"load_ms"` // the part of the phase during which the load was sending
	Rate          float64        `json:"rate"`    // requests started per second over LoadMs
	ByClass       map[string]int `json:"failures_by_class"`
	Retried       int            `json:"retried"`
	SlowCompleted int            `json:"slow_completed"`
	SlowCut       int            `json:"slow_cut"`
	Dropped       int            `json:"dropped"`
	Connections   map[string]int `json:"connections"` // loadgen.ConnRecord outcome → connections that ended in the phase
	Cancelled     int            `json:"cancelled"`   // requests the client gave up on (not drops)
	// StallMs is the longest a client waited in the phase: the longer of the
	// longest request (MaxMs) and the longest gap without any response while
	// requests were outstanding (GapMs, at 10 ms resolution).
	StallMs float64 `json:"stall_ms"`
	GapMs   float64 `json:"gap_ms"`
	// The stall's span on the run's clock (the longest request's, sent to
	// answered, or the longest gap's, whichever StallMs is), and where each
	// of the two started: the stall rule holds the span to the observer.
	StallStartMs float64 `json:"stall_start_ms"`
	StallEndMs   float64 `json:"stall_end_ms"`
	MaxStartMs   float64 `json:"max_start_ms"`
	GapStartMs   float64 `json:"gap_start_ms"`
	// OutageMs is the longest span in which requests failed and none
	// succeeded (10 ms resolution).
	OutageMs float64 `json:"outage_ms"`

	// Drops of the traffic kinds that results.gob does not show (each also
	// in Dropped): HTTP/2 streams replayed without the never-processed
	// guarantee that then succeeded, WebSockets ended as a drop, WebSocket
	// messages never echoed (or echoed wrong), uploads that failed — by
	// when the stream started, or the connection or upload ended.
	StreamsRetriedUnsafe int `json:"streams_retried_unsafe,omitempty"`
	WebSocketsDropped    int `json:"websockets_dropped,omitempty"`
	MessagesLost         int `json:"websocket_messages_lost,omitempty"`
	UploadsCut           int `json:"uploads_failed,omitempty"`

	// From the server's log: requests answered in the phase by each
	// generation of workers, and by workers whose master was gone.
	ByGeneration      map[string]int `json:"answered_by_generation,omitempty"`
	AnsweredByOrphans int            `json:"answered_by_orphans,omitempty"`
}

// Failure counts failed requests of one class in one phase.
type Failure struct {
	Class string `json:"class"`
	Phase string `json:"phase"`
	Count int    `json:"count"`
}

// Latency summarises request latencies in milliseconds.
type Latency struct {
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// Timeline is the run bucketed over time for the plot: bucket i covers
// [StartMs+i*BucketMs, StartMs+(i+1)*BucketMs) on the run clock; requests by
// their start, retries by when they happened, downloads by their end.
type Timeline struct {
	StartMs  float64   `json:"start_ms"`
	BucketMs float64   `json:"bucket_ms"`
	Requests []int     `json:"requests"`
	Failed   []int     `json:"failed"`
	Retried  []int     `json:"retried"`
	SlowCut  []int     `json:"slow_cut"`
	P99Ms    []float64 `json:"p99_ms"` // 0 where the bucket has no request
	MaxMs    []float64 `json:"max_ms"`
	P50Ms    []float64 `json:"p50_ms"`
	// Points are the losses one by one (the first few thousand of NPoints):
	// a failed request at its start with its class, a retry ("retried") or a
	// cut long download ("slow-cut") when it happened.
	Points  []FailPoint `json:"points"`
	NPoints int         `json:"points_count"`
	// Generations are the requests each generation of workers answered
	// per bucket, by when nginx logged them (the second witness).
	Generations []GenBand `json:"generations,omitempty"`
}

// FailPoint is one loss on the run clock.
type FailPoint struct {
	Ms        float64 `json:"ms"`
	LatencyMs float64 `json:"latency_ms"` // how long the client waited for a failed request (0 for the others)
	Class     string  `json:"class"`
}

// Window is a span of the run in which the load sent nothing while it
// should have: the load generator itself stalled, so nothing it measured
// there can be trusted.
type Window struct {
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	Phase   string  `json:"phase"`
}

// PassWithKnownLoss tells a pass that lost only what it is known to lose
// from a clean pass.
func (s *Scenario) PassWithKnownLoss() bool {
	return s.Verdict == VerdictPass && len(s.KnownLossSeen) > 0
}

// BaselineScenarios are the baseline pair's runs (none without a baseline).
func BaselineScenarios(r *Report) []Scenario {
	if r.Baseline == nil {
		return nil
	}
	return r.Baseline.Scenarios
}
