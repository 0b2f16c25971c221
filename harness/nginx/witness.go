package nginx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// The server's own record of every request — the second witness, held
// against the load's (analysis.Reconcile). nginx writes one JSON line per
// request to a file on a tmpfs of its own (never the error log's file
// system, which the log-dir-full fault fills), read back after the run.
const (
	// WitnessDir is the tmpfs the access log lives on.
	WitnessDir = "/var/lib/nuh-witness"
	// WitnessLog is the access log file.
	WitnessLog = WitnessDir + "/access.jsonl"
	// WitnessInclude is where --server-log puts the include of a user's tree.
	WitnessInclude = "/etc/nginx/nuh-witness.conf"
	// WitnessTmpfs sizes the tmpfs: 253 bytes a line measured (make
	// bench), room for about 2.1 million requests; a full file system
	// loses lines (the reconciliation then reports an incomplete witness)
	// and nginx says so at [alert] in its error log.
	WitnessTmpfs = "size=512m,mode=1777"
	// WitnessMaxRead bounds what is read back into the run's record: the
	// whole tmpfs.
	WitnessMaxRead = 512 << 20
	// RequestIDHeader carries the id of each request and stream the load
	// sends (vegeta's attack name and sequence number, or the long
	// download's, upload's or WebSocket's own).
	RequestIDHeader = "X-Nuh-Request-Id"
	// PidHeader names the worker that answered, in the harness's own
	// configuration: the client then knows who held a response whose end
	// never came, even when a KILL left that worker no time to log it.
	PidHeader = "X-Nuh-Pid"
)

// WitnessFormat is the log_format and access_log of the witness, valid in
// nginx's http context (1.11.8 and later have escape=json).
const WitnessFormat = `log_format nuh_witness escape=json
        '{"id":"$http_x_nuh_request_id","pid":$pid,"connection":$connection,'
        '"connection_requests":$connection_requests,"status":$status,"bytes_sent":$bytes_sent,'
        '"body_bytes_sent":$body_bytes_sent,"content_length":"$sent_http_content_length",'
        '"request_length":$request_length,"request_time":$request_time,"msec":$msec,'
        '"protocol":"$server_protocol","upstream_status":"$upstream_status"}';
access_log ` + WitnessLog + ` nuh_witness;
`

// witnessFile is the include's name in a tree (TreeDir/witnessFile is
// WitnessInclude).
const witnessFile = "nuh-witness.conf"

// usesWitness tells whether conf, or a tree's include, names the
// witness's log, so that its tmpfs must be mounted.
func usesWitness(conf []byte, t *Tree) bool {
	if t != nil {
		for _, f := range t.Files {
			if f.Path == witnessFile && bytes.Contains(f.Data, []byte(WitnessDir)) {
				return true
			}
		}
	}
	return bytes.Contains(conf, []byte(WitnessDir))
}

// WithServerLog is a copy of the tree with the witness added through one
// include (--server-log): the file nuh-witness.conf at the top of the
// tree, and `include` of it as the first line of nginx.conf's http block.
// A tree that has a file of that name already is refused, never overwritten.
func WithServerLog(t *Tree) (*Tree, error) {
	out := &Tree{Dir: t.Dir}
	found := false
	for _, f := range t.Files {
		if f.Path == witnessFile {
			return nil, fmt.Errorf("--server-log: the tree has a %s of its own; the harness will not overwrite it", witnessFile)
		}
		if f.Path == "nginx.conf" {
			s := string(f.Data)
			i := strings.Index(s, "http {")
			if i < 0 {
				return nil, fmt.Errorf("--server-log: %s/nginx.conf has no `http {` block to include %s in", t.Dir, WitnessInclude)
			}
			j := i + len("http {")
			f.Data = []byte(s[:j] + "\n    include " + WitnessInclude + "; # added by nginx-upgrade-harness --server-log" + s[j:])
			found = true
		}
		out.Files = append(out.Files, f)
	}
	if !found {
		return nil, fmt.Errorf("--server-log: %s has no nginx.conf", t.Dir)
	}
	out.Files = append(out.Files, TreeFile{Path: witnessFile, Mode: 0o644, Data: []byte(WitnessFormat)})
	return out, nil
}

// ServerLogAdded is what --server-log adds, in the words of site.added.
func ServerLogAdded() string {
	return fmt.Sprintf("--server-log: include %s (log_format nuh_witness, access_log %s on a tmpfs) as the first line of nginx.conf's http block",
		WitnessInclude, WitnessLog)
}

// witnessBlock matches the witness's log_format and access_log in a
// configuration.
var witnessBlock = regexp.MustCompile(`(?s)log_format nuh_witness .*?access_log ` + regexp.QuoteMeta(WitnessLog) + ` nuh_witness;`)

// WithoutWitness is conf with the server's log turned off (access_log
// off), for measuring what the log costs.
func WithoutWitness(conf []byte) []byte {
	return witnessBlock.ReplaceAll(conf, []byte("access_log off;"))
}

// Witness tells whether the node's configuration writes the server's log.
func (n *Node) Witness() bool { return n.witness }

// SaveWitness streams the server's log into dst, at most WitnessMaxRead
// bytes (a part line at the bound is cut off), never through memory;
// size is the file's size in the container, saved what dst holds, so that
// a reader knows what was left out.
func (n *Node) SaveWitness(ctx context.Context, dst string) (size, saved int64, err error) {
	r, err := n.Exec(ctx, "stat", "-c", "%s", WitnessLog)
	if err != nil {
		return 0, 0, fmt.Errorf("read the server's log: %w", err)
	}
	if r.Exit != 0 {
		return 0, 0, fmt.Errorf("read the server's log: %s", harness.LastLine(r.Stderr))
	}
	size, _ = strconv.ParseInt(strings.TrimSpace(r.Stdout), 10, 64)
	if n.res == nil {
		return size, 0, errors.New("read the server's log: node closed")
	}
	f, err := os.Create(dst)
	if err != nil {
		return size, 0, err
	}
	defer f.Close()
	var errb bytes.Buffer
	cctx, cancel := context.WithTimeout(ctx, harness.ExecTimeout)
	defer cancel()
	w := bufio.NewWriterSize(f, 1<<20)
	exit, err := harness.ExecIn(cctx, n.pool.Client, n.res.Container.ID, nil, nil, w, &errb, "head", "-c", strconv.Itoa(WitnessMaxRead), WitnessLog)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return size, 0, fmt.Errorf("read the server's log: %w", err)
	}
	if exit != 0 {
		return size, 0, fmt.Errorf("read the server's log: %s", harness.LastLine(errb.String()))
	}
	if saved, err = cutPartLine(f); err != nil {
		return size, saved, fmt.Errorf("read the server's log: %w", err)
	}
	return size, saved, nil
}

// cutPartLine truncates f after its last newline: a line cut by the bound
// would not parse.
func cutPartLine(f *os.File) (int64, error) {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil || end == 0 {
		return end, err
	}
	const tail = 64 << 10
	from := max(0, end-tail)
	buf := make([]byte, end-from)
	if _, err := f.ReadAt(buf, from); err != nil && err != io.EOF {
		return end, err
	}
	k := bytes.LastIndexByte(buf, '\n')
	if k == len(buf)-1 {
		return end, nil
	}
	keep := from + int64(k) + 1
	return keep, f.Truncate(keep)
}
