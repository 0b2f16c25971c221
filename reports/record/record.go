package record

import (
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
)

// File names inside a scenario's run directory written by the scenario runner.
const (
	MetaFile    = "meta.json"     // Meta
	EventsFile  = "events.jsonl"  // one Event per line, appended as each step ends
	RetriesFile = "retries.jsonl" // one RetryRecord per line, written by the load
	FinalFile   = "final.json"    // Final: the final-state checks of the scenario
	ErrorFile   = "error.txt"     // optional: one line saying why the scenario could not run
	// EndFile is the end-of-run marker, written last, once everything else
	// is on disk: a directory without it is the record of a run that was
	// killed or interrupted half-way, however whole its files look.
	EndFile = "end.json" // End
	// FaultsFile holds one FaultRecord per line, appended as each fault is
	// injected and healed.
	FaultsFile = "faults.jsonl"
)

// FaultRecord is one fault's injection and heal on the run's clock, and
// what came of them. A fault is written when injected and again, whole,
// when healed: the last line of a name wins.
type FaultRecord struct {
	Name       string  `json:"name"`
	Step       string  `json:"step"`        // the step after whose verification it struck
	InjectedMs float64 `json:"injected_ms"` // when the injection returned (its effect had landed)
	// StartMs is when the injection began (0 in older records): a signal
	// the fault sends lands between StartMs and InjectedMs.
	StartMs  float64  `json:"start_ms,omitempty"`
	HealedMs *float64 `json:"healed_ms"` // null: not healed (nothing to heal, or the run ended first)
	Outcome  string   `json:"outcome"`   // what injecting and healing did, in words
	Expected string   `json:"expected"`  // what it was measured to do (the expectation it was judged by)
	Error    string   `json:"error,omitempty"`
	// StallsContainer marks a fault that stops or slows every process of
	// nginx's container, its heartbeat included (freeze, cpu-starve): the
	// heartbeat's lateness in its window is the fault's, not the machine's.
	StallsContainer bool `json:"stalls_container,omitempty"`
	// LogLines are the error log's failure lines from the injection to the
	// heal (or the end): nginx's own word on what the fault did.
	LogLines []string `json:"log_lines,omitempty"`
}

// Files a finished run directory holds at its top level (see WriteAll).
const (
	ReportJSON     = "report.json"
	ReportMarkdown = "report.md"
	ReportHTML     = "report.html"
)

// Meta describes one scenario run; it is written before the load starts.
type Meta struct {
	Scenario  string    `json:"scenario"`
	Expect    string    `json:"expect"` // "zero-drops" or "drops"
	From      string    `json:"from"`
	To        string    `json:"to"`
	FromBuild *BuildRef `json:"from_build,omitempty"` // what From and To resolved to
	ToBuild   *BuildRef `json:"to_build,omitempty"`
	Load      Load      `json:"load"`
	LoadPath  string    `json:"load_path"`  // how the load reached nginx, e.g. "host 127.0.0.1:PORT via Docker's port proxy"
	StartWall string    `json:"start_wall"` // RFC3339Nano anchor of the run's clock (loadgen.Clock.Start)
	// Expected long-download size in bytes (0 when there are none).
	SlowBytes int64 `json:"slow_bytes"`

	// The plan, recorded before the load starts, so that a verdict can tell
	// a run that did all it meant to from one that stopped early.
	SteadyMs     float64       `json:"steady_ms"`     // load before the first step
	PlannedSteps []PlannedStep `json:"planned_steps"` // nil: the steps are not known in advance (a procedure's)
	// MaxStallMs is the longest a client may wait on a graceful path (0: no
	// limit): the zero-drops expectation also requires no stall above it.
	MaxStallMs float64 `json:"max_stall_ms"`
	// ExpectDrops says where and what a "drops" expectation must see.
	ExpectDrops *DropSpec `json:"expect_drops,omitempty"`
	// KnownLosses are the losses a zero-drops scenario is known to cause
	// (its path, its traffic): each passes when it is all that was lost,
	// unless Strict (run --strict) fails them too.
	KnownLosses []KnownLoss `json:"known_losses,omitempty"`
	Strict      bool        `json:"strict,omitempty"`
	// Notes are what the harness changed for the scenario (a listen
	// parameter, a sysctl), for the report to say.
	Notes []string `json:"notes,omitempty"`
	// Traffic is how the load ran each traffic kind; empty in a record
	// made before traffic kinds (one HTTP/1.1 profile).
	Traffic []TrafficPlan `json:"traffic,omitempty"`
	// Site is the user's configuration tree (run --config-dir); nil with
	// one nginx.conf.
	Site *Site `json:"site,omitempty"`
	// Targets are the requests of a user's targets file (--targets) the
	// request kinds sent instead of the harness's own.
	Targets []TargetPlan `json:"targets,omitempty"`
	// ServerLog says whether the run kept nginx's own record of every
	// request (the second witness): when true, witness.json and
	// server-log.jsonl must be there. Nil in a record written before the
	// field was: the absence of witness.json is then taken as no witness
	// configured, with a note that this could not be checked.
	ServerLog *bool `json:"server_log,omitempty"`
	// Observer says the load recorded the observer's health (nil: a record
	// made before it).
	Observer *ObserverPlan `json:"observer,omitempty"`
	// PlanDigest is the digest of the scenario's plan in run.json
	// (ScenarioPlan.Digest; empty: a record made before plans were).
	PlanDigest string `json:"plan_digest,omitempty"`
	// FinalWant is what the scenario must end on: the report holds
	// final.json's processes to it (nil: a record made before it, whose
	// check_errors are the runner's).
	FinalWant *FinalPlan `json:"final_want,omitempty"`
	// Heartbeat says whether a heartbeat ran in nginx's container (nil: a
	// record made before it).
	Heartbeat *HeartbeatPlan `json:"heartbeat,omitempty"`
}

// TrafficPlan is one traffic kind as the load ran it.
type TrafficPlan struct {
	Kind        string `json:"kind"`
	Profile     string `json:"profile"`               // the profile name its records carry
	Rate        int    `json:"rate,omitempty"`        // requests per second (a request kind)
	Connections int    `json:"connections,omitempty"` // WebSockets, or uploads at once
	Bytes       int64  `json:"bytes,omitempty"`       // per upload
}

// PlannedStep is one step a scenario means to run, in order.
type PlannedStep struct {
	Name    string  `json:"name"`
	AuditMs float64 `json:"audit_ms"` // the load goes on this long after the step is verified
	// Expected is "fail" for a step that must fail to verify, with
	// ExpectedCause (a regular expression) matching its error or the error
	// log's lines: a step that failed for another reason proves nothing.
	Expected      string `json:"expected,omitempty"`
	ExpectedCause string `json:"expected_cause,omitempty"`
	// Drain marks the step that starts a drain of the workers holding the
	// long connections (DrainStart: WINCH, HUP, QUIT, TERM) and the one
	// that ends it (DrainEnd: the step that waits for the drained set to
	// go): the long connections are sized to span them, and the report
	// checks on the records that they did.
	Drain string `json:"drain,omitempty"`
}

// PlannedStep.Drain values.
const (
	DrainStart = "start"
	DrainEnd   = "end"
)

// DropSpec is what a positive control must see: drops in the phase its
// causing step opened, of server-side classes only, and nowhere else.
type DropSpec struct {
	Phase   string   `json:"phase"`   // the drops fall here (the phase the causing step opens)
	Classes []string `json:"classes"` // failure classes allowed among its failed requests
	// AndAfter: drops may also fall in any later phase (a fault whose
	// effect lasts), never before.
	AndAfter bool `json:"and_after,omitempty"`
	// Optional: drops are allowed there, not required (a fault that may
	// find nothing in flight to cut).
	Optional bool `json:"optional,omitempty"`
	// MaxOutageMs bounds the longest span of the phase in which requests
	// failed and none succeeded (0: not checked).
	MaxOutageMs float64 `json:"max_outage_ms,omitempty"`
	// KeepDownloadsBefore names a step: long downloads started before it was
	// sent (held by a set the causing step does not touch) must complete.
	KeepDownloadsBefore string `json:"keep_downloads_before,omitempty"`
	// CutHeld: the drops are the connections the signalled processes held —
	// every long download in flight at the causing step is cut, and no more
	// requests are lost than connections were open at that moment.
	CutHeld bool `json:"cut_held,omitempty"`
	// Witness names the reconciled classes (WitnessCut…) every drop in
	// the phases must have when the server's log was kept; BySignalled:
	// each must be held by a pid the causing step signalled.
	Witness     []string `json:"witness_classes,omitempty"`
	BySignalled bool     `json:"witness_by_signalled,omitempty"`
}

// End is end.json, the end-of-run marker.
type End struct {
	EndMs    float64 `json:"end_ms"`    // on the run's clock
	StepsRun int     `json:"steps_run"` // events written
}

// Load is the traffic profile as reported in report.json.
type Load struct {
	Rate      int    `json:"rate"`
	Method    string `json:"method"`
	KeepAlive bool   `json:"keepalive"`
	Slow      int    `json:"slow"`
	// Traffic lists the traffic kinds the load ran (empty: http1, or
	// http1-keepalive with KeepAlive).
	Traffic []string `json:"traffic,omitempty"`
}

// Event is one signal step (or a marker such as load start/stop) on the
// run's clock. Phases are the spans between verified steps.
type Event struct {
	Name       string   `json:"name"`             // e.g. "spawn-new-master"
	Signal     string   `json:"signal,omitempty"` // e.g. "USR2"
	PID        int      `json:"pid,omitempty"`
	PIDs       []int    `json:"pids,omitempty"` // every pid the step signalled
	SentMs     float64  `json:"sent_ms"`
	VerifiedMs float64  `json:"verified_ms"`
	Verified   bool     `json:"verified"`
	Error      string   `json:"error,omitempty"`
	Phase      string   `json:"phase,omitempty"`     // name of the phase that starts when this step is sent (default: Name)
	LogLines   []string `json:"log_lines,omitempty"` // failure lines ([error] to [emerg]) of the error log since the step was sent
	// Expected is the outcome the scenario wants from this step: "" or "verify"
	// (the usual), or "fail" (the step must fail to verify, e.g. USR2 with a
	// broken new binary).
	Expected string `json:"expected,omitempty"`
	// ExpectedCause is, for an expected failure, a regular expression its
	// error or log lines must match.
	ExpectedCause string `json:"expected_cause,omitempty"`
}

// The second witness's files: nginx's own record of every request (the
// access log of the harness's configuration, or of --server-log), as read
// back after the run; what the read found; and the process table as the
// run saw it, so that each pid of that log can be named.
const (
	ServerLogFile = "server-log.jsonl" // one ServerEntry per line, as nginx wrote it
	WitnessFile   = "witness.json"     // a WitnessRead: present, sizes, error
	ProcessesFile = "processes.jsonl"  // one ProcessSample per line
	// ErrorLogFile is the error log's failure lines ([error] to [emerg])
	// from the start of the run to its end, whole (bounded), as nginx
	// wrote them: the steps quote only their own windows, and a worker
	// may crash between them. A line starting with # is the runner's.
	ErrorLogFile = "error-log.txt"
)

// WitnessRead is witness.json: whether the server's log was configured,
// and what reading it back gave. No file: the witness was absent.
type WitnessRead struct {
	SizeBytes int64  `json:"size_bytes"` // the log's size in the container
	ReadBytes int64  `json:"read_bytes"` // what server-log.jsonl holds (bounded)
	Error     string `json:"error,omitempty"`
}

// ProcessSample is the process table at one moment of the run: at the
// start, before and after each step, at the end.
type ProcessSample struct {
	Ms    float64        `json:"ms"`
	At    string         `json:"at"`             // "start", "before STEP", "after STEP", "final"
	PIDs  []int          `json:"pids,omitempty"` // the pids the step signalled
	Procs []FinalProcess `json:"procs"`
}

// Step outcomes a scenario may expect (Event.Expected).
const (
	ExpectVerify = "verify" // also the meaning of ""
	ExpectFail   = "fail"
)

// Scenario expectations (Meta.Expect).
const (
	ExpectZeroDrops = "zero-drops"
	ExpectDrops     = "drops" // a positive control: the path must lose connections
)

// RetryRecord is a line of retries.jsonl, as loadgen writes it.
type RetryRecord = loadgen.RetryRecord

// Final is final.json — the one final-state type: what nginx was left in
// at the end of a scenario or procedure, read from the process table, not
// assumed. Non-empty CheckErrors make the scenario fail.
type Final struct {
	Masters        int      `json:"masters"`
	Workers        int      `json:"workers"`
	ServingBinary  string   `json:"serving_binary"` // old, new, none or unknown: read from the master's executable
	PIDFilePID     int      `json:"pid_file_pid"`
	OldbinPresent  bool     `json:"oldbin_present"`
	Serving        bool     `json:"serving"`
	ExpectedBinary string   `json:"expected_binary,omitempty"`
	CheckErrors    []string `json:"check_errors,omitempty"`
	// StartPIDFilePID is the master nginx.pid named before the first step
	// (0: a record made before it was kept).
	StartPIDFilePID int `json:"start_pid_file_pid,omitempty"`

	// Processes are every nginx process at the end; Orphans those whose
	// master is gone; Wrong names, in words, what is amiss (orphans,
	// lingering masters, a .oldbin left behind, more than one binary
	// serving), whatever the scenario expected.
	Processes []FinalProcess `json:"processes"`
	Orphans   []FinalProcess `json:"orphans"`
	Wrong     []string       `json:"wrong"`

	// Systemd is systemd's view of nginx.service (nil when systemd was not
	// PID 1); its disagreements with the processes are in Wrong.
	Systemd *SystemdView `json:"systemd,omitempty"`
}

// FinalProcess is one nginx process at the end.
type FinalProcess struct {
	PID   int    `json:"pid"`
	PPID  int    `json:"ppid"`
	Role  string `json:"role"`  // master, worker, worker-shutting-down, helper
	State string `json:"state"` // the /proc state letter (T: stopped)
	// Binary is old, new, same (old and new are one file) or unknown: a
	// master's read from its executable; a worker's is its master's, whose
	// fork it is (nginx never execs a worker); an orphan's is unknown.
	Binary string `json:"binary"`
}

// BuildRef is a build spec and what it resolved to when the run started.
type BuildRef struct {
	Spec    string `json:"spec"`              // as given: debian:bookworm-security
	Exact   string `json:"exact"`             // the spec of exactly that build: debian:1.22.1-9+deb12u12
	Version string `json:"version,omitempty"` // the package or upstream version
	Suite   string `json:"suite,omitempty"`   // the suite that served it ("" from the cache, a file, an image)
	Origin  string `json:"origin,omitempty"`  // archive, cache (no suite serves it now), file
	// SHA256 is the nginx package file's (debian:), the tarball's
	// (source:), or empty (binary:, image: — the binary's is in provenance).
	SHA256 string `json:"sha256,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Label is "SPEC = EXACT" when the spec named a suite or channel, else the spec.
func (b *BuildRef) Label() string {
	if b == nil {
		return ""
	}
	if b.Exact != "" && b.Exact != b.Spec && b.Version != "" {
		return b.Spec + " = " + b.Version
	}
	return b.Spec
}
