package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Every request and long download carries its id, and results.gob holds
// what names it: the server's record can be matched one by one.
func TestEveryRequestCarriesItsID(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get(RequestIDHeader)]++
		mu.Unlock()
		w.Header().Set(PidHeader, "4242")
		if r.URL.Path == "/slow/big.bin" {
			w.Write(make([]byte, 1024))
			return
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	dir := t.TempDir()
	l, err := Run(context.Background(), srv.URL, NewClock(), dir, []Profile{{Name: "get", Rate: 100, KeepAlive: true}},
		Slow{Count: 2, ExpectedBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := l.Close(); err != nil {
		t.Fatal(err)
	}
	results := decodeResults(t, dir)
	if len(results) < 10 {
		t.Fatalf("only %d results", len(results))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range results {
		if id := RequestID(r.Attack, r.Seq); seen[id] != 1 {
			t.Errorf("request %s reached the server %d times under its id", id, seen[id])
		}
	}
	downloads := readJSONL[DownloadRecord](t, filepath.Join(dir, DownloadsFile))
	for _, d := range downloads {
		if id := "slow/" + strconv.Itoa(d.ID); seen[id] != 1 || d.ServerPid != 4242 {
			t.Errorf("download %s: reached the server %d times, named pid %d", id, seen[id], d.ServerPid)
		}
	}
	if seen[""] != 0 {
		t.Errorf("%d requests without an id", seen[""])
	}
}
