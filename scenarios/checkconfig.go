package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
)

// CheckConfig tries the configuration under test in a throwaway container
// before any scenario starts: the old binary's `nginx -t`, then nginx started
// and asked for what the load will ask — `/`, the long-download file at a
// limited rate when there are long downloads, `/post` for POST — so that a
// config that cannot serve the load is bad input (one line), not a failed
// scenario.
func CheckConfig(ctx context.Context, pool *dockertest.Pool, im Images, p Params) error {
	if p.Site != nil {
		return errors.New("a configuration tree is checked by CheckSite")
	}
	image := im.Good
	if image == "" {
		image = im.Broken
	}
	n, err := nginx.StartNode(ctx, pool, p.nodeOptions(image, nginx.WithoutStart())...)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer n.Close()
	if err := n.StartNginx(ctx); err != nil {
		return fmt.Errorf("--config: %w (does it listen on port %d? a configuration on its own ports goes in a tree: --config-dir)", err, nginx.ListenPort)
	}
	check := func(method, path string, body string, wantLen int64) error {
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		a, err := n.Ask(ctx, nginx.Ask{Method: method, Path: path, Body: b})
		if err != nil {
			return fmt.Errorf("--config: %s %s: %v", method, path, err)
		}
		if a.Status != http.StatusOK {
			return fmt.Errorf("--config: %s %s answered %s, the load needs 200", method, path, a.StatusText)
		}
		if wantLen > 0 && a.ContentLength != wantLen {
			return fmt.Errorf("--config: %s %s has %d bytes, the long downloads expect %d", method, path, a.ContentLength, wantLen)
		}
		return nil
	}
	if p.Load.Method == "POST" {
		if err := check("POST", "/post", strings.Repeat("x", 512), 0); err != nil {
			return err
		}
	} else if err := check("GET", "/", "", 0); err != nil {
		return err
	}
	if p.Load.Slow > 0 {
		if err := check("HEAD", loadgen.DefaultSlowPath+"?rate=1000000", "", loadgen.DefaultSlowBytes); err != nil {
			return err
		}
	}
	if err := p.checkTraffic(ctx, n); err != nil {
		if te, ok := err.(targetsError); ok {
			return te.error
		}
		return fmt.Errorf("--config: %w", err)
	}
	return nil
}
