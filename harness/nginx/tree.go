package nginx

// A user's configuration tree (--config-dir), read on the host and placed
// at /etc/nginx in the container.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// TreeDir is where a configuration tree is placed in the container: the
// directory both Debian's nginx and the harness's source builds
// (--conf-path=/etc/nginx/nginx.conf) read nginx.conf from.
const TreeDir = "/etc/nginx"

// TreeFile is one entry of a configuration tree.
type TreeFile struct {
	Path string // relative to the tree, slash-separated
	Mode fs.FileMode
	Data []byte
	Link string // a symbolic link's target, kept as it is
	Dir  bool
}

// Tree is a configuration tree read into memory: what goes into every
// container of the run, unchanged.
type Tree struct {
	Dir   string // where it was read from, on the host
	Files []TreeFile
}

// ReadTree reads dir (which must hold nginx.conf) with every file in it;
// a file that cannot be read is named.
func ReadTree(dir string) (*Tree, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "nginx.conf")); err != nil {
		return nil, fmt.Errorf("%s has no nginx.conf (nginx reads %s/nginx.conf)", dir, TreeDir)
	}
	t := &Tree{Dir: dir}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := TreeFile{Path: filepath.ToSlash(rel), Mode: info.Mode().Perm()}
		switch {
		case d.IsDir():
			f.Dir = true
		case info.Mode()&fs.ModeSymlink != 0:
			if f.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if d.Name() == ".gitkeep" {
				return nil // keeps an empty directory in a repository; not the tree's
			}
			if f.Data, err = os.ReadFile(p); err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
		default:
			return nil // sockets, fifos: nothing nginx reads
		}
		t.Files = append(t.Files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(t.Files, func(i, j int) bool { return t.Files[i].Path < t.Files[j].Path })
	return t, nil
}

// Main is the tree's nginx.conf.
func (t *Tree) Main() []byte {
	for _, f := range t.Files {
		if f.Path == "nginx.conf" {
			return f.Data
		}
	}
	return nil
}

// Edited is a copy of the tree with edit applied to every regular file
// with a listen directive (e.g. reuseport on every listen); changed names
// the files it changed.
func (t *Tree) Edited(edit func(file string, data []byte) ([]byte, error)) (*Tree, []string, error) {
	out := &Tree{Dir: t.Dir, Files: append([]TreeFile(nil), t.Files...)}
	var changed []string
	for i, f := range out.Files {
		if f.Dir || f.Link != "" || !bytes.Contains(f.Data, []byte("listen")) {
			continue
		}
		data, err := edit(f.Path, f.Data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		if !bytes.Equal(data, f.Data) {
			out.Files[i].Data = data
			changed = append(changed, f.Path)
		}
	}
	return out, changed, nil
}

// archive is the tree as a tar stream whose entries lie under name (the
// last element of TreeDir), owned by root, modes kept.
func (t *Tree) archive(name string) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: now}); err != nil {
		return nil, err
	}
	for _, f := range t.Files {
		h := &tar.Header{Name: name + "/" + f.Path, Mode: int64(f.Mode), ModTime: now}
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, err
			}
		}
	}
	return &buf, tw.Close()
}

// Mount is a read-only bind mount of a host path into the container.
type Mount struct{ Src, Dst string }

// ParseMount reads SRC:DST: SRC must exist on the host, DST be absolute.
func ParseMount(spec string) (Mount, error) {
	i := strings.LastIndexByte(spec, ':')
	if i <= 0 || i == len(spec)-1 {
		return Mount{}, fmt.Errorf("%q: want SRC:DST", spec)
	}
	m := Mount{Src: spec[:i], Dst: spec[i+1:]}
	abs, err := filepath.Abs(m.Src)
	if err != nil {
		return Mount{}, err
	}
	if _, err := os.Stat(abs); err != nil {
		return Mount{}, fmt.Errorf("%q: %v", spec, err)
	}
	m.Src = abs
	if !strings.HasPrefix(m.Dst, "/") {
		return Mount{}, fmt.Errorf("%q: the destination %q must be an absolute path in the container", spec, m.Dst)
	}
	return m, nil
}

// SiteMainPorts are the ports the harness probes and loads through: the
// first plain-HTTP listener on a wildcard IPv4 address (Docker's port
// proxy reaches it), and the first TLS listener on one (0: none).
func SiteMainPorts(s *Site) (plain, tls int) {
	for _, l := range s.Listeners {
		if l.Addr != "*" {
			continue
		}
		if !l.SSL && plain == 0 {
			plain = l.Port
		}
		if l.SSL && tls == 0 {
			tls = l.Port
		}
	}
	return plain, tls
}

// placeTree replaces TreeDir in the container with the tree.
func (n *Node) placeTree(ctx context.Context, t *Tree) error {
	r, err := n.Exec(ctx, "rm", "-rf", TreeDir)
	if err != nil {
		return fmt.Errorf("replace %s: %w", TreeDir, err)
	}
	if r.Exit != 0 {
		return fmt.Errorf("replace %s: %s", TreeDir, harness.LastLine(r.Stderr))
	}
	buf, err := t.archive(path.Base(TreeDir))
	if err != nil {
		return err
	}
	return n.upload(ctx, path.Dir(TreeDir), buf)
}

// Listeners are the listening sockets the configuration tree declares,
// each with the 127.0.0.1:PORT Docker published its port on; without a
// tree, the two the harness's own nginx.conf has (ListenPort, and TLSPort
// with TLS and HTTP/2), which a --config must keep.
func (n *Node) Listeners() []Listener { return append([]Listener(nil), n.listeners...) }

// HostAddr is the 127.0.0.1:PORT Docker published the container's port
// on; false when the port is not published.
func (n *Node) HostAddr(port int) (string, bool) {
	a, ok := n.hostAddrs[port]
	return a, ok
}

// InnerAddr is the container's port on the loopback of its own network
// namespace (see NetnsPath).
func (n *Node) InnerAddr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// Tree is the configuration tree the node was started with (nil: one nginx.conf).
func (n *Node) Tree() *Tree { return n.tree }

// Dump runs `BINARY -T` with the node's command line options: the
// configuration as that binary reads it, every file after its marker
// (ParseDump). A configuration it rejects is an error naming nginx's
// [emerg] line.
func (n *Node) Dump(ctx context.Context, binary string) (string, error) {
	argv := append([]string{binary}, n.cmd[1:]...)
	argv = append(argv, "-T")
	r, err := n.Exec(ctx, argv...)
	if err != nil {
		return "", fmt.Errorf("nginx -T: %w", err)
	}
	if r.Exit != 0 {
		return "", fmt.Errorf("%s", causeLine(r.Stderr+r.Stdout))
	}
	return r.Stdout, nil
}

// SHA256 identifies the tree's content: every entry's path, mode, link
// and data, in path order.
func (t *Tree) SHA256() string {
	h := sha256.New()
	for _, f := range t.Files {
		fmt.Fprintf(h, "%s\x00%o\x00%t\x00%s\x00%d\x00", f.Path, f.Mode, f.Dir, f.Link, len(f.Data))
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// StartCommand starts argv in the container and returns without waiting
// (as the nginx start command is run: its argv after the two paths of a
// fixed script, never spliced into it, no shell of the user's): its
// output goes to logPath, its exit status to statusPath when it ends.
func (n *Node) StartCommand(ctx context.Context, logPath, statusPath string, argv ...string) error {
	if len(argv) == 0 {
		return fmt.Errorf("start command: empty argv")
	}
	return n.execDetached(ctx, append([]string{"sh", "-c", startScript, "sh", logPath, statusPath}, argv...)...)
}
