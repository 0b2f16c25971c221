package reports

import "github.com/releng-tools/nginx-upgrade-harness/loadgen"

// File names inside a scenario's run directory written by the scenario runner.
const (
	MetaFile    = "meta.json"     // Meta
	EventsFile  = "events.jsonl"  // one Event per line, appended as each step ends
	RetriesFile = "retries.jsonl" // one RetryRecord per line, written by the load
	FinalFile   = "final.json"    // Final, optional: the final-state checks of the scenario
	ErrorFile   = "error.txt"     // optional: one line saying why the scenario could not run
)

// Files a finished run directory holds at its top level (see WriteAll).
const (
	ReportJSON     = "report.json"
	ReportMarkdown = "report.md"
	ReportHTML     = "report.html"
)

// Meta describes one scenario run; it is written before the load starts.
type Meta struct {
	Scenario  string `json:"scenario"`
	Expect    string `json:"expect"` // "zero-drops" or "drops"
	From      string `json:"from"`
	To        string `json:"to"`
	Load      Load   `json:"load"`
	LoadPath  string `json:"load_path"`  // how the load reached nginx, e.g. "host 127.0.0.1:PORT via Docker's port proxy"
	StartWall string `json:"start_wall"` // RFC3339Nano anchor of the run's clock (loadgen.Clock.Start)
	// Expected long-download size in bytes (0 when there are none).
	SlowBytes int64 `json:"slow_bytes"`
}

// Load is the traffic profile as reported in report.json.
type Load struct {
	Rate      int    `json:"rate"`
	Method    string `json:"method"`
	Keepalive bool   `json:"keepalive"`
	Slow      int    `json:"slow"`
}

// Event is one signal step (or a marker such as load start/stop) on the
// run's clock. Phases are the spans between verified steps.
type Event struct {
	Name       string   `json:"name"`             // e.g. "spawn-new-master"
	Signal     string   `json:"signal,omitempty"` // e.g. "USR2"
	PID        int      `json:"pid,omitempty"`
	SentMs     float64  `json:"sent_ms"`
	VerifiedMs float64  `json:"verified_ms"`
	Verified   bool     `json:"verified"`
	Error      string   `json:"error,omitempty"`
	Phase      string   `json:"phase,omitempty"`     // name of the phase that starts when this step is sent (default: Name)
	LogLines   []string `json:"log_lines,omitempty"` // [alert]/[emerg] lines of the error log since the step was sent
	// Expected is the outcome the scenario wants from this step: "" or "verify"
	// (the usual), or "fail" (the step must fail to verify, e.g. USR2 with a
	// broken new binary).
	Expected string `json:"expected,omitempty"`
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

// Final is the final state of the nginx under test, checked after the last
// step. Non-empty CheckErrors make the scenario fail.
type Final struct {
	Masters        int      `json:"masters"`
	Workers        int      `json:"workers"`
	ServingBinary  string   `json:"serving_binary"` // old, new, none or unknown: read from the master's executable
	PIDFilePID     int      `json:"pid_file_pid"`
	OldbinPresent  bool     `json:"oldbin_present"`
	Serving        bool     `json:"serving"`
	ExpectedBinary string   `json:"expected_binary,omitempty"`
	CheckErrors    []string `json:"check_errors,omitempty"`
}
