package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// observerWindows merges a record's lines by window, as a reader must: the
// worst of each measure, the counts added.
func observerWindows(t *testing.T, dir string) ([]ObserverRecord, map[int64]ObserverRecord) {
	t.Helper()
	lines := readJSONL[ObserverRecord](t, filepath.Join(dir, ObserverFile))
	merged := map[int64]ObserverRecord{}
	var firsts []ObserverRecord
	for _, r := range lines {
		k := windowOf(r.StartMs)
		if !r.Supplement {
			firsts = append(firsts, r)
		}
		m, ok := merged[k]
		if !ok {
			merged[k] = r
			continue
		}
		m.LateMs, m.HiccupMs, m.ProbeMs = max(m.LateMs, r.LateMs), max(m.HiccupMs, r.HiccupMs), max(m.ProbeMs, r.ProbeMs)
		m.Hits, m.Probes, m.ProbeMissed = m.Hits+r.Hits, m.Probes+r.Probes, m.ProbeMissed+r.ProbeMissed
		merged[k] = m
	}
	return firsts, merged
}

func okServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(srv.Close)
	return srv
}

// Every window of the grid is written once, in order, from the load's
// start; every hit is counted in the window it was due in; the probe asked
// about every ProbeInterval.
func TestObserverWritesEveryWindow(t *testing.T) {
	srv := okServer(t)
	dir := t.TempDir()
	l, err := Run(context.Background(), srv.URL, NewClock(), dir, []Profile{{Name: "get", Rate: 200, KeepAlive: true}}, Slow{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	sum, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	firsts, merged := observerWindows(t, dir)
	if len(firsts) < 12 {
		t.Fatalf("%d windows written for 1.2 s of run, want at least 12", len(firsts))
	}
	hits, probes := 0, 0
	for i, r := range firsts {
		if r.StartMs != float64(i)*100 || r.EndMs != r.StartMs+100 {
			t.Fatalf("window %d is %v–%v ms: the grid is not whole and in order", i, r.StartMs, r.EndMs)
		}
	}
	for _, r := range merged {
		hits += r.Hits
		probes += r.Probes + r.ProbeMissed
	}
	if int64(hits) != sum.Profiles[0].Requests {
		t.Errorf("%d hits counted in the windows, the load sent %d", hits, sum.Profiles[0].Requests)
	}
	if probes < 10 { // 60 slots in 1.2 s; a slot passed while a probe waited is not sent
		t.Errorf("%d control probes in 1.2 s, want about 60", probes)
	}
}

// A process stopped for 400 ms (SIGSTOP, then SIGCONT from a child) is the
// observer's blindness made real: the pacer's lateness, the hiccup meter and
// the control probe must each see it, in the windows it spans.
func TestObserverSeesTheProcessStopped(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatal("sh is needed to resume the stopped test process")
	}
	srv := okServer(t)
	dir := t.TempDir()
	clock := NewClock()
	l, err := Run(context.Background(), srv.URL, clock, dir, []Profile{{Name: "get", Rate: 200, KeepAlive: true}}, Slow{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	resume := exec.Command("sh", "-c", fmt.Sprintf("sleep 0.4; kill -CONT %d", os.Getpid()))
	if err := resume.Start(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := clock.Now()
	if err := stopSelf(); err != nil {
		t.Fatal(err)
	}
	resume.Wait()
	time.Sleep(500 * time.Millisecond)
	if _, err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, merged := observerWindows(t, dir)
	var late, hiccup, probe float64
	for k := windowOf(stoppedAt); k <= windowOf(stoppedAt+400); k++ {
		r := merged[k]
		late, hiccup, probe = max(late, r.LateMs), max(hiccup, r.HiccupMs), max(probe, r.ProbeMs)
	}
	t.Logf("stopped at %.0f ms for 400 ms: late %.0f ms, hiccup %.0f ms, probe %.0f ms", stoppedAt, late, hiccup, probe)
	for what, v := range map[string]float64{"the pacer's lateness": late, "the hiccup meter": hiccup, "the control probe": probe} {
		if v < 250 {
			t.Errorf("%s saw %.0f ms in the windows of a 400 ms stop, want at least 250", what, v)
		}
	}
	var before float64
	for k := int64(1); k < windowOf(stoppedAt)-1; k++ {
		before = max(before, merged[k].HiccupMs, merged[k].LateMs, merged[k].ProbeMs)
	}
	t.Logf("worst before the stop: %.0f ms", before)
}

// A responder that stops answering makes the probes missed, not silently
// absent.
func TestObserverCountsMissedProbes(t *testing.T) {
	dir := t.TempDir()
	o, err := startObserver(NewClock(), dir, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	o.srv.Close() // the responder goes; the probes fail
	time.Sleep(300 * time.Millisecond)
	if err := o.close(); err != nil {
		t.Fatal(err)
	}
	_, merged := observerWindows(t, dir)
	answered, missed := 0, 0
	for _, r := range merged {
		answered += r.Probes
		missed += r.ProbeMissed
	}
	if answered == 0 || missed == 0 {
		t.Fatalf("answered %d, missed %d: want both (answered before the responder went, missed after)", answered, missed)
	}
}

// A window already written gets a supplement line, never a silent loss.
func TestObserverSupplementsAWrittenWindow(t *testing.T) {
	dir := t.TempDir()
	clock := NewClock()
	o, err := startObserver(clock, dir, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond) // windows 0–2 written (hold 0)
	due := clock.start.Add(50 * time.Millisecond)
	o.hit(due, due.Add(640*time.Millisecond))
	if err := o.close(); err != nil {
		t.Fatal(err)
	}
	lines := readJSONL[ObserverRecord](t, filepath.Join(dir, ObserverFile))
	var sup []ObserverRecord
	for _, r := range lines {
		if r.Supplement && r.StartMs == 0 && r.Hits > 0 { // the hiccup meter may add its own
			sup = append(sup, r)
		}
	}
	if len(sup) != 1 || sup[0].LateMs != 640 || sup[0].Hits != 1 {
		t.Fatalf("supplements of window 0: %+v, want one with the hit 640 ms late", sup)
	}
}

// On a socket, the probe asks the responder there and nothing on
// 127.0.0.1: what a load agent in nginx's namespace uses (netem delays
// that namespace's loopback).
func TestObserverProbesOverASocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "probe.sock")
	o, err := startObserver(NewClock(), dir, 0, sock)
	if err != nil {
		t.Fatal(err)
	}
	if o.ln.Addr().Network() != "unix" {
		t.Fatalf("responder on %s %s, want the unix socket", o.ln.Addr().Network(), o.ln.Addr())
	}
	time.Sleep(300 * time.Millisecond)
	o.srv.Close()
	time.Sleep(200 * time.Millisecond)
	if err := o.close(); err != nil {
		t.Fatal(err)
	}
	_, merged := observerWindows(t, dir)
	answered, missed := 0, 0
	for _, r := range merged {
		answered += r.Probes
		missed += r.ProbeMissed
	}
	if answered == 0 || missed == 0 {
		t.Fatalf("answered %d, missed %d: want both (answered on the socket, missed once its responder went)", answered, missed)
	}
}
