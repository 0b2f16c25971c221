package scenarios

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
)

// The drain each scenario of the catalogue marks, and long downloads sized
// to be in flight from its start to after its end is sent.
func TestLongDownloadsOutlastTheDrain(t *testing.T) {
	want := map[string][2]string{
		"upgrade":           {"stop-old-workers", "quit-old-master"},
		"rollback":          {"stop-old-workers", "quit-new-master"},
		"term-fallback":     {"stop-old-workers", "terminate-new-master"},
		"reload":            {"reload-config", "old-generation-drained"},
		"reload-workers":    {"reload-up", "old-generation-drained"},
		"reuseport":         {"stop-old-workers", "quit-old-master"},
		"reuseport-migrate": {"stop-old-workers", "quit-old-master"},
		"upgrade-twice":     {"stop-old-workers", "quit-old-master"},
		// No drain: KILL, a USR2 that must fail, a reload nginx rejects.
		"kill-fallback": {}, "broken-build": {}, "reload-broken-config": {},
	}
	steady := Params{}.steady()
	for _, sc := range Catalogue() {
		w, ok := want[sc.Name]
		if !ok {
			t.Errorf("%s: no expected drain in the test: add it", sc.Name)
			continue
		}
		start, end := drainWindow(sc.Moves)
		var got [2]string
		if start >= 0 {
			got = [2]string{sc.Moves[start].Step.Name, sc.Moves[end].Step.Name}
		}
		if got != w {
			t.Errorf("%s: drain %q, want %q", sc.Name, got, w)
			continue
		}
		if start < 0 {
			continue
		}
		// The planned sending of the drain's end, at the measured cost of
		// a step, must fall before the downloads end, with the margin.
		endSent := steady
		for _, m := range sc.Moves[:end] {
			endSent += stepCost + m.Audit
		}
		if span := slowSpan(sc, steady); span < endSent+drainMarginMin || span < time.Duration(float64(endSent)*(1+drainMarginFraction)) {
			t.Errorf("%s: downloads last %s, the drain's end is planned at %s: no margin", sc.Name, span, endSent)
		}
	}
}

// The default upgrade as measured when the downloads were sized by a fixed
// length: WINCH sent at 6.2 s, QUIT at 9.7 s, the downloads ended at 8.0 s.
// Sized from the plan, they must last past that QUIT with the margin.
func TestUpgradeDownloadsLastPastTheMeasuredQuit(t *testing.T) {
	sc, err := Lookup([]string{"upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	if span := slowSpan(sc[0], Params{}.steady()); span < 9663*time.Millisecond+drainMarginMin {
		t.Errorf("upgrade downloads last %s: they would end before the QUIT measured at 9.7 s, plus %s", span, drainMarginMin)
	}
}

// On a slow host (an emulated VM: execs of seconds at rest) a step costs
// more and the long downloads last longer, so that they still span the
// drain; here (execs of about 0.1 s) nothing changes.
func TestSlowHostStretchesTheLongDownloads(t *testing.T) {
	if got := stepCostOn(120 * time.Millisecond); got != stepCost {
		t.Errorf("execs of 120 ms: a step costs %s, want %s", got, stepCost)
	}
	if got := stepCostOn(time.Second); got != stepExecs*time.Second {
		t.Errorf("execs of 1 s: a step costs %s, want %s", got, stepExecs*time.Second)
	}
	sc, err := Lookup([]string{"upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	steady := Params{}.steady()
	here, slow := slowSpanOn(sc[0], steady, stepCostOn(120*time.Millisecond), defaultShutdownTimeout), slowSpanOn(sc[0], steady, stepCostOn(time.Second), defaultShutdownTimeout)
	if here != slowSpan(sc[0], steady) || slow <= here {
		t.Errorf("long downloads: %s here, %s on the slow host", here, slow)
	}
	// Never past the default config's worker_shutdown_timeout from the
	// earliest the drain can start: reload-workers' first HUP comes right
	// after steady, and beside a busy core (execs at rest of 254 ms) its
	// downloads were planned at 23.5 s and cut 20 s after that HUP.
	if defaultShutdownTimeout != 20*time.Second {
		t.Fatalf("the default config's worker_shutdown_timeout read as %s", defaultShutdownTimeout)
	}
	for _, name := range []string{"upgrade", "reload-workers", "rollback"} {
		scs, err := Lookup([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		start, _ := drainWindow(scs[0].Moves)
		earliest := steady
		for _, m := range scs[0].Moves[:start] {
			earliest += m.Audit
		}
		quiet := slowSpan(scs[0], steady)
		for _, exec := range []time.Duration{254 * time.Millisecond, time.Second} {
			got := slowSpanOn(scs[0], steady, stepCostOn(exec), defaultShutdownTimeout)
			if got < quiet || got > max(quiet, earliest+defaultShutdownTimeout-shutdownMargin) {
				t.Errorf("%s, execs of %s: long downloads %s (quiet %s), past the shutdown timeout from %s", name, exec, got, quiet, earliest)
			}
		}
	}
}

// The cap is the run's own config's worker_shutdown_timeout, not the
// default config's: a config that lets a drain hold connections 90 s lets
// a slow host's downloads last as long as its steps need.
func TestSlowSpanCapIsTheRunsConfig(t *testing.T) {
	scs, err := Lookup([]string{"rollback"})
	if err != nil {
		t.Fatal(err)
	}
	steady := Params{}.steady()
	long := []byte(strings.Replace(nginx.DefaultConfig, "worker_shutdown_timeout 20s;", "worker_shutdown_timeout 90s;", 1))
	if string(long) == nginx.DefaultConfig {
		t.Fatal("the default config sets no worker_shutdown_timeout 20s to raise")
	}
	p := Params{Config: long}
	if p.shutdownTimeout() != 90*time.Second || (Params{}).shutdownTimeout() != 20*time.Second {
		t.Fatalf("read %s and %s", p.shutdownTimeout(), Params{}.shutdownTimeout())
	}
	vm := stepCostOn(1065 * time.Millisecond) // the emulated VM's execs at rest
	capped, free := slowSpanOn(scs[0], steady, vm, Params{}.shutdownTimeout()), slowSpanOn(scs[0], steady, vm, p.shutdownTimeout())
	if free <= capped || free != plannedSlowSpan(scs[0], steady, vm) {
		t.Fatalf("rollback on the VM: %s under the default config, %s under 90 s (planned %s)", capped, free, plannedSlowSpan(scs[0], steady, vm))
	}
	// Measured on the VM: rollback's QUIT to the new master sent at 32.3 s.
	if free < 32300*time.Millisecond+drainMarginMin {
		t.Fatalf("rollback's downloads last %s: they would end before the QUIT measured at 32.3 s", free)
	}
}

// A held download is let go shutdownMargin before the config's
// worker_shutdown_timeout runs out, counted from the drain's start, when
// the drain-ending step has not come by then (a real load and socket).
func TestHeldDownloadsAreReleasedInsideTheShutdownTimeout(t *testing.T) {
	const size = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(make([]byte, size))
	}))
	defer srv.Close()
	dir := t.TempDir()
	l, err := loadgen.Run(context.Background(), srv.URL, loadgen.NewClock(), dir, nil, loadgen.Slow{Count: 1, ExpectedBytes: size, HoldTail: size / 2})
	if err != nil {
		t.Fatal(err)
	}
	hold := &downloadHold{load: l, held: true}
	hold.releaseAfter(time.Now(), shutdownMargin+time.Second, tailTime(size/2, 5<<20)) // 1 s less 100 ms for the tail
	if got := tailTime(size/2, 5<<20); got != 100*time.Millisecond {
		t.Errorf("tailTime(512 KiB at 5 MiB/s) = %s, want 100ms", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.WaitDownloads(ctx); err != nil {
		t.Fatal(err)
	}
	if hold.release() {
		t.Error("release() = true after the timer released the downloads: want false, once only")
	}
	hold.stop()
	if _, err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var d loadgen.DownloadRecord
	data, err := os.ReadFile(filepath.Join(dir, loadgen.DownloadsFile))
	if err != nil || json.Unmarshal(data, &d) != nil {
		t.Fatalf("downloads.jsonl: %s, %v", data, err)
	}
	if !d.Completed || d.HeldMs < 800 || d.HeldMs > 2500 {
		t.Errorf("download %+v: want completed after a hold of about 900 ms", d)
	}

	// Not held (no drain): release reports nothing, and no timer runs.
	free := &downloadHold{load: l}
	free.releaseAfter(time.Now(), time.Second, 0)
	if free.release() || free.timer != nil {
		t.Error("a run without a hold released something or armed a timer")
	}
}
