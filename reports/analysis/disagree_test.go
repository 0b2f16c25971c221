package analysis

import (
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// nginx logs one line an attempt: a replay (retries.jsonl) may be logged as
// often as it was tried, a request never replayed once; more is another
// witness's line.
func TestDisagreementsAttempts(t *testing.T) {
	line := func(id string, pid int) record.ServerEntry {
		return record.ServerEntry{ID: id, PID: pid, Status: 200, BodyBytesSent: 5, ContentLength: "5", Msec: 1000.1}
	}
	client := []record.ClientRecord{
		{ID: "a/1", Kind: record.KindRequest, Outcome: record.ClientOK, StartMs: 50, EndMs: 60},
		{ID: "a/2", Kind: record.KindRequest, Outcome: record.ClientOK, StartMs: 50, EndMs: 60},
		{ID: "a/2", Kind: record.KindReplay, Outcome: record.ClientReplayed, StartMs: 50, EndMs: 60, Attempts: 2},
	}
	attempts := map[string]int{"a/2": 2}
	if d := Disagreements(client, []record.ServerEntry{line("a/1", 7), line("a/2", 7), line("a/2", 8)}, attempts, 1_000_000, 100); len(d) != 0 {
		t.Errorf("a replay logged once an attempt: %q", d)
	}
	d := Disagreements(client, []record.ServerEntry{line("a/1", 7), line("a/1", 8), line("a/2", 7), line("a/2", 8), line("a/2", 9)}, attempts, 1_000_000, 100)
	if len(d) != 1 || !strings.Contains(d[0], "2 ids logged more often") {
		t.Errorf("a request logged twice and a replay three times: %q", d)
	}
	// A line written before the run began (or long after it) is another run's.
	early := line("a/1", 7)
	early.Msec = 990
	if d := Disagreements(client[:1], []record.ServerEntry{early}, nil, 1_000_000, 100); len(d) != 1 || !strings.Contains(d[0], "outside the run's window") {
		t.Errorf("a line 10 s before the run: %q", d)
	}
}
