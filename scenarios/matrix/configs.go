package matrix

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
)

type namedConfig struct {
	Config
	data []byte
	dir  bool
	tree *nginx.Tree
	sha  string
}

func readConfigs(path string, confs []Config) ([]namedConfig, error) {
	if len(confs) == 0 {
		confs = []Config{{Name: "default"}}
	}
	var out []namedConfig
	names := map[string]bool{}
	for _, c := range confs {
		if c.Path == "default" && c.Name == "" {
			c = Config{Name: "default"}
		}
		if c.Name == "" {
			c.Name = strings.TrimSuffix(filepath.Base(c.Path), filepath.Ext(c.Path))
		}
		if names[c.Name] {
			return nil, bad(path, "configs: two configurations named %q: give each a name", c.Name)
		}
		names[c.Name] = true
		nc := namedConfig{Config: c}
		if c.Path != "" {
			p := c.Path
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			st, err := os.Stat(p)
			if err != nil {
				return nil, bad(path, "configs: %s: no such file", c.Path)
			}
			if st.IsDir() {
				// A whole /etc/nginx tree, as --config-dir places it; its
				// digest covers every file's path, mode, link and content.
				nc.dir = true
				if nc.tree, err = nginx.ReadTree(p); err != nil {
					return nil, bad(path, "configs: %s: %v", c.Path, err)
				}
				h := sha256.New()
				for _, f := range nc.tree.Files {
					fmt.Fprintf(h, "%s\x00%o\x00%s\x00%d\x00", f.Path, f.Mode, f.Link, len(f.Data))
					h.Write(f.Data)
				}
				nc.sha = hex.EncodeToString(h.Sum(nil))
			} else {
				if nc.data, err = os.ReadFile(p); err != nil {
					return nil, bad(path, "configs: %s: %v", c.Path, err)
				}
				h := sha256.Sum256(nc.data)
				nc.sha = hex.EncodeToString(h[:])
			}
		} else if c.Name != "default" {
			return nil, bad(path, "configs: %q has no path (only \"default\", the harness's own, needs none)", c.Name)
		}
		out = append(out, nc)
	}
	return out, nil
}
