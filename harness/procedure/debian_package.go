package procedure

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
)

// Paths and names of the Debian package procedures.
const (
	PolicyRCD      = "/usr/sbin/policy-rc.d"
	repackDir      = "/tmp/nginx-upgrade-harness-repack"
	repackedSuffix = "+nuh.repack1"
)

// debianPackageKind is `dpkg -i` of the new .debs: the maintainer scripts
// decide what happens to nginx.
var debianPackageKind = Kind{Name: "debian-package", Default: true,
	Help:    "dpkg -i the new .debs: the maintainer scripts do what they do (in a container invoke-rc.d may refuse: the report says so)",
	prepare: func(ctx context.Context, pr *Prepared) error { return prepareDebs(ctx, pr, false) }}

// debianPackageHostKind is debian-package with invoke-rc.d allowed to act,
// as on a host with an init system: it installs a policy-rc.d that allows
// every action (and says so), since in a container without /sbin/init
// invoke-rc.d blocks every action when there is none.
var debianPackageHostKind = Kind{Name: "debian-package-host",
	Help:    "the same, with a policy-rc.d that allows every action, as on a host with an init system",
	prepare: func(ctx context.Context, pr *Prepared) error { return prepareDebs(ctx, pr, true) }}

func prepareDebs(ctx context.Context, pr *Prepared, host bool) error {
	n, name := pr.n, pr.p.Kind
	pr.notes = append(pr.notes, policyNote(ctx, n))
	if !exists(ctx, n, "/sbin/init") {
		pr.notes = append(pr.notes, "no /sbin/init in the container: without a policy-rc.d, invoke-rc.d blocks every action (\"No init system and policy-rc.d missing! Defaulting to block.\")")
	}
	if host {
		if err := n.WriteFile(ctx, PolicyRCD, []byte(allowPolicy), 0o755); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		pr.notes = append(pr.notes, "debian-package-host: "+PolicyRCD+" replaced by one that allows every action (exit 0), so that invoke-rc.d acts as on a host with an init system")
	}
	debs, err := debsIn(ctx, n, harness.NewDebsDir)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(debs) == 0 || pr.o.Broken {
		deb, note, err := repackage(ctx, n)
		if err != nil {
			return fmt.Errorf("%s: no .deb of the new build, and repackaging failed: %w", name, err)
		}
		debs = []string{deb}
		pr.notes = append(pr.notes, note)
	}
	pr.argv = append([]string{"dpkg", "--force-confdef", "--force-confold", "-i"}, debs...)
	pr.env = []string{"DEBIAN_FRONTEND=noninteractive"}
	return nil
}

// allowPolicy is the policy-rc.d of debian-package-host.
const allowPolicy = "#!/bin/sh\n# nginx-upgrade-harness (debian-package-host): allow every action, as on a host with an init system\nexit 0\n"

// policyNote says whether the image has a policy-rc.d, which decides what
// invoke-rc.d (and so a package's maintainer scripts) may do to nginx.
func policyNote(ctx context.Context, n *nginx.Node) string {
	b, err := n.ReadFile(ctx, PolicyRCD)
	if err != nil {
		return "no " + PolicyRCD + " in the container (none was added)"
	}
	lines := []string{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#!") {
			lines = append(lines, l)
		}
	}
	return fmt.Sprintf("%s present in the container (left as found): %q — invoke-rc.d asks it before acting on nginx (exit 101 forbids)", PolicyRCD, strings.Join(lines, "; "))
}

// debsIn lists the .deb files in dir (sorted, so nginx-common comes before nginx).
func debsIn(ctx context.Context, n *nginx.Node, dir string) ([]string, error) {
	r, err := n.Exec(ctx, "find", dir, "-maxdepth", "1", "-name", "*.deb", "-type", "f")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out, nil
}

// repackage builds a .deb of the staged new binary from the old build's
// nginx .deb: the same package with the new binary at usr/sbin/nginx, its
// md5sums entry updated and its version raised, so that dpkg -i is an
// upgrade and the maintainer scripts run as for one.
func repackage(ctx context.Context, n *nginx.Node) (string, string, error) {
	old, err := debsIn(ctx, n, harness.OldDebsDir)
	if err != nil {
		return "", "", err
	}
	var src string
	for _, d := range old {
		if strings.HasPrefix(path.Base(d), "nginx_") {
			src = d
		}
	}
	if src == "" {
		return "", "", fmt.Errorf("no nginx_*.deb of the old build in %s (the old build is not a Debian package)", harness.OldDebsDir)
	}
	root := repackDir + "/root"
	for _, argv := range [][]string{
		{"rm", "-rf", repackDir},
		{"mkdir", "-p", repackDir},
		{"dpkg-deb", "-R", src, root},
		{"test", "-f", root + "/usr/sbin/nginx"},
		{"cp", harness.NewBinaryStage, root + "/usr/sbin/nginx"},
	} {
		if err := run(ctx, n, argv...); err != nil {
			return "", "", err
		}
	}
	ctl, err := n.ReadFile(ctx, root+"/DEBIAN/control")
	if err != nil {
		return "", "", err
	}
	var version string
	lines := strings.Split(string(ctl), "\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			version = strings.TrimSpace(v)
			lines[i] = "Version: " + version + repackedSuffix
		}
	}
	if version == "" {
		return "", "", fmt.Errorf("%s: no Version in DEBIAN/control", src)
	}
	if err := n.WriteFile(ctx, root+"/DEBIAN/control", []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return "", "", err
	}
	if sums, err := n.ReadFile(ctx, root+"/DEBIAN/md5sums"); err == nil {
		r, err := n.Exec(ctx, "md5sum", root+"/usr/sbin/nginx")
		if err != nil || r.Exit != 0 {
			return "", "", fmt.Errorf("md5sum of the new binary: %v %s", err, r.Stderr)
		}
		sum := strings.Fields(r.Stdout)[0]
		sl := strings.Split(string(sums), "\n")
		for i, l := range sl {
			if strings.HasSuffix(l, "  usr/sbin/nginx") {
				sl[i] = sum + "  usr/sbin/nginx"
			}
		}
		if err := n.WriteFile(ctx, root+"/DEBIAN/md5sums", []byte(strings.Join(sl, "\n")), 0o644); err != nil {
			return "", "", err
		}
	}
	deb := repackDir + "/" + strings.TrimSuffix(path.Base(src), ".deb") + "-repacked.deb"
	if err := run(ctx, n, "dpkg-deb", "--root-owner-group", "-Zgzip", "-b", root, deb); err != nil {
		return "", "", err
	}
	note := fmt.Sprintf("no Debian package of the new build exists: %s was repackaged inside the container (dpkg-deb -R, then -b) "+
		"with the staged new binary %s in place of usr/sbin/nginx, as version %s%s, and installed with dpkg -i",
		path.Base(src), harness.NewBinaryStage, version, repackedSuffix)
	return deb, note, nil
}
