package nginx

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// The server's own record of every request — the second witness, held
// against the load's (reports.Reconcile). nginx writes one JSON line per
// request to a file on a tmpfs of its own (never the error log's file
// system, which the log-dir-full fault fills), read back after the run.
const (
	// WitnessDir is the tmpfs the access log lives on.
	WitnessDir = "/var/lib/nuh-witness"
	// WitnessLog is the access log file.
	WitnessLog = WitnessDir + "/access.jsonl"
	// WitnessInclude is where --server-log puts the include of a user's tree.
	WitnessInclude = "/etc/nginx/nuh-witness.conf"
	// WitnessTmpfs sizes the tmpfs: about 300 bytes a line, room for
	// about 1.7 million requests; a fuller file system loses lines, which
	// the reconciliation then reports as an incomplete witness.
	WitnessTmpfs = "size=512m,mode=1777"
	// WitnessMaxRead bounds what is read back into the run's record.
	WitnessMaxRead = 256 << 20
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

// ReadWitness reads the server's log back, at most WitnessMaxRead bytes
// (the rest is cut at a line boundary); size is the file's size in the
// container, so that a reader knows what was left out.
func (n *Node) ReadWitness(ctx context.Context) (data []byte, size int64, err error) {
	r, err := n.Exec(ctx, "stat", "-c", "%s", WitnessLog)
	if err != nil {
		return nil, 0, fmt.Errorf("read the server's log: %w", err)
	}
	if r.Exit != 0 {
		return nil, 0, fmt.Errorf("read the server's log: %s", harness.LastLine(r.Stderr))
	}
	size, _ = strconv.ParseInt(strings.TrimSpace(r.Stdout), 10, 64)
	r, err = n.Exec(ctx, "head", "-c", strconv.Itoa(WitnessMaxRead), WitnessLog)
	if err != nil {
		return nil, size, fmt.Errorf("read the server's log: %w", err)
	}
	if r.Exit != 0 {
		return nil, size, fmt.Errorf("read the server's log: %s", harness.LastLine(r.Stderr))
	}
	data = []byte(r.Stdout)
	if k := strings.LastIndexByte(r.Stdout, '\n'); k >= 0 && k+1 < len(data) {
		data = data[:k+1]
	}
	return data, size, nil
}
