package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// TricklersFile holds one TrickleRecord per slow client, written when it ends.
const TricklersFile = "tricklers.jsonl"

// TrickleRecord is one slow client: a request line and headers sent a byte
// at a time and never finished, to hold a connection mid-request.
type TrickleRecord struct {
	ID      int     `json:"id"`
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	Sent    int     `json:"bytes_sent"`
	// Ended is server-closed (EOF), server-reset, or client-stopped (the
	// load ended first: the server held it to the end).
	Ended string `json:"ended"`
	Error string `json:"error,omitempty"`
}

// trickleEvery is how often a slow client sends its next byte.
const trickleEvery = time.Second

// StartTricklers opens n slow clients now, on whichever workers accept
// them; each runs until the server closes it or the load ends, and is
// recorded in tricklers.jsonl. They are not requests: they never finish one,
// and are counted apart from the load's requests and connections.
func (l *Load) StartTricklers(n int) error {
	if l.dlCtx.Err() != nil {
		return errors.New("loadgen: start slow clients: the load has ended")
	}
	if n < 0 || n > MaxSlow {
		return fmt.Errorf("loadgen: start slow clients: count %d: want 0..%d", n, MaxSlow)
	}
	if l.tricklers == nil {
		f, err := createMsgFile(l.dir, TricklersFile)
		if err != nil {
			return err
		}
		l.trickleFile, l.tricklers = f, newJSONL(f)
	}
	host := strings.TrimPrefix(l.base, "http://")
	for i := range n {
		l.trWG.Add(1)
		go l.trickle(l.dlCtx, i, host)
	}
	return nil
}

func (l *Load) trickle(ctx context.Context, id int, addr string) {
	defer l.trWG.Done()
	rec := TrickleRecord{ID: id, StartMs: l.clock.Now()}
	defer func() {
		rec.EndMs = l.clock.Now()
		l.tricklers.Put(rec)
	}()
	d := &net.Dialer{Timeout: dialTimeout}
	var c net.Conn
	var err error
	if l.tr.netns != "" {
		c, err = dialIn(ctx, d, l.tr.netns, "tcp", addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		rec.Ended, rec.Error = "server-closed", err.Error()
		return
	}
	defer c.Close()
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		if err == nil {
			err = io.EOF
		}
		ended <- err
	}()
	msg := fmt.Sprintf("GET /?slow-client=%d HTTP/1.1\r\nHost: %s\r\nX-Slow-Client: ", id, addr)
	t := time.NewTicker(trickleEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		b := byte('x')
		if i < len(msg) {
			b = msg[i]
		}
		if _, err := c.Write([]byte{b}); err != nil {
			rec.Ended, rec.Error = endOf(err), err.Error()
			return
		}
		rec.Sent++
		select {
		case err := <-ended:
			rec.Ended = endOf(err)
			if !errors.Is(err, io.EOF) {
				rec.Error = err.Error()
			}
			return
		case <-ctx.Done():
			rec.Ended = "client-stopped"
			return
		case <-t.C:
		}
	}
}

func endOf(err error) string {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return "server-reset"
	}
	return "server-closed"
}
