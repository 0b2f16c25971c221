// Package vm boots a throwaway Debian trixie virtual machine under QEMU —
// cgroup v2 and trixie's Docker, like today's CI runners — and runs a job
// of the harness's in it, bringing its files back.
package vm

import (
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"

	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The VM's recipe: everything that decides the content of its disk. A
// change here makes a new disk (the cache key hashes all of it).
const (
	recipeVersion = "vm-recipe-1"
	suite         = "trixie"
	// diskSize is the root file system's size (a sparse file): the
	// images a run loads take about 1.5 GB in /var/lib/docker.
	diskSize = "12G"
	// kernelArgs: the root is the first virtio disk; the console, on the
	// first serial port, is where the guest says what it does.
	kernelArgs = "root=/dev/vda rw console=ttyS0 loglevel=4 systemd.show_status=error"
)

// packages are what debootstrap installs besides minbase: a kernel that
// boots from virtio (its initramfs has virtio and ext4), systemd, and
// trixie's Docker (docker.io only recommends its CLI).
var packages = []string{"systemd-sysv", "udev", "kmod", "linux-image-amd64", "initramfs-tools", "busybox",
	"docker.io", "docker-cli", "iproute2", "ca-certificates", "e2fsprogs", "dbus", "procps"}

// guestScript runs at every boot (nuh-vm.service): the job on the input
// disk, its files onto the output disk, then power off.
//
//go:embed guest.sh
var guestScript string

// guestFiles are written into the root file system as they are.
var guestFiles = map[string]string{
	"usr/local/sbin/nuh-vm-guest": guestScript,
	"etc/systemd/system/nuh-vm.service": `[Unit]
Description=nginx-upgrade-harness VM job (input /dev/vdb, output /dev/vdc)
Wants=docker.service network-online.target
After=docker.service network-online.target

[Service]
# exec, not oneshot: boot completes while the job runs (a job still
# starting would have systemd draw its progress over the console lines).
Type=exec
ExecStart=/usr/local/sbin/nuh-vm-guest
StandardOutput=journal
StandardError=journal
`,
	// qemu's user-mode network: DHCP on the one NIC, its DNS relay.
	"etc/systemd/network/10-nic.network": "[Match]\nName=en*\n\n[Network]\nDHCP=ipv4\n",
	"etc/resolv.conf":                    "nameserver 10.0.2.3\n",
	"etc/fstab":                          "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
	"etc/hostname":                       "nuh-vm\n",
	"etc/hosts":                          "127.0.0.1 localhost\n127.0.1.1 nuh-vm\n",
}

// guestLinks enable units as `systemctl enable` would (no systemd runs
// while the disk is made).
var guestLinks = map[string]string{
	"etc/systemd/system/multi-user.target.wants/nuh-vm.service":                           "/etc/systemd/system/nuh-vm.service",
	"etc/systemd/system/multi-user.target.wants/systemd-networkd.service":                 "/usr/lib/systemd/system/systemd-networkd.service",
	"etc/systemd/system/sockets.target.wants/systemd-networkd.socket":                     "/usr/lib/systemd/system/systemd-networkd.socket",
	"etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service": "/usr/lib/systemd/system/systemd-networkd-wait-online.service",
	"etc/systemd/system/multi-user.target.wants/docker.service":                           "/usr/lib/systemd/system/docker.service",
	// Nothing logs in: no getty on the console the guest writes to.
	"etc/systemd/system/serial-getty@ttyS0.service": "/dev/null",
	"etc/systemd/system/getty@tty1.service":         "/dev/null",
}

// Disk is a made VM disk: its root file system image and the kernel and
// initramfs that boot it.
type Disk struct {
	Dir, Image, Kernel, Initrd string
}

// CacheDir is where VM disks are kept, outside any clone: the user's cache
// directory (XDG_CACHE_HOME, else ~/.cache)/nginx-upgrade-harness/vm.
func CacheDir() (string, error) {
	d := os.Getenv("XDG_CACHE_HOME")
	if d == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", errors.New("vm: no cache directory: set XDG_CACHE_HOME or HOME")
		}
		d = filepath.Join(home, ".cache")
	}
	return filepath.Join(d, "nginx-upgrade-harness", "vm"), nil
}

// recipeKey hashes the recipe and the mirror it is made from.
func recipeKey(mirror string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", recipeVersion, suite, diskSize, mirror)
	for _, p := range packages {
		fmt.Fprintf(h, "pkg %s\x00", p)
	}
	for _, m := range []map[string]string{guestFiles, guestLinks} {
		for _, k := range sortedKeys(m) {
			fmt.Fprintf(h, "%s\x00%s\x00", k, m[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// EnsureDisk returns the cached disk of the recipe, making it when absent
// (debootstrap from mirror, then mkfs.ext4 -d: no loop mount). Making it
// needs root (debootstrap) and takes a few minutes; log gets a line per step.
func EnsureDisk(ctx context.Context, mirror string, log io.Writer) (Disk, error) {
	base, err := CacheDir()
	if err != nil {
		return Disk{}, err
	}
	dir := filepath.Join(base, recipeKey(mirror))
	d := Disk{Dir: dir, Image: filepath.Join(dir, "disk.img"), Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img")}
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		return d, nil
	}
	if os.Geteuid() != 0 {
		return Disk{}, fmt.Errorf("vm: no disk at %s, and making one needs root (debootstrap)", dir)
	}
	for _, tool := range []string{"debootstrap", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			return Disk{}, fmt.Errorf("vm: %s not found: `make deps` installs it", tool)
		}
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return Disk{}, fmt.Errorf("vm: %w", err)
	}
	tmp, err := os.MkdirTemp(base, "making-")
	if err != nil {
		return Disk{}, fmt.Errorf("vm: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	start := time.Now()
	fmt.Fprintf(log, "vm: making the disk %s (debootstrap %s from %s)…\n", dir, suite, mirror)
	if err := run(ctx, log, "debootstrap", "--variant=minbase", "--include="+strings.Join(packages, ","), suite, root, mirror); err != nil {
		return Disk{}, err
	}
	if err := configureRoot(root, mirror); err != nil {
		return Disk{}, fmt.Errorf("vm: configure the root file system: %w", err)
	}
	for dst, pattern := range map[string]string{"vmlinuz": "vmlinuz-*", "initrd.img": "initrd.img-*"} {
		m, _ := filepath.Glob(filepath.Join(root, "boot", pattern))
		if len(m) != 1 {
			return Disk{}, fmt.Errorf("vm: want one %s in the root's /boot, found %d", pattern, len(m))
		}
		if err := copyFile(m[0], filepath.Join(tmp, dst)); err != nil {
			return Disk{}, fmt.Errorf("vm: %w", err)
		}
	}
	img := filepath.Join(tmp, "disk.img")
	if err := run(ctx, log, "truncate", "-s", diskSize, img); err != nil {
		return Disk{}, err
	}
	if err := run(ctx, log, "mkfs.ext4", "-q", "-F", "-L", "nuh-vm", "-d", root, img); err != nil {
		return Disk{}, err
	}
	if err := os.RemoveAll(root); err != nil {
		return Disk{}, fmt.Errorf("vm: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "recipe"), []byte(fmt.Sprintf("%s %s mirror %s packages %s\n", recipeVersion, suite, mirror, strings.Join(packages, " "))), 0o644); err != nil {
		return Disk{}, fmt.Errorf("vm: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "ready"), nil, 0o644); err != nil {
		return Disk{}, fmt.Errorf("vm: %w", err)
	}
	os.RemoveAll(dir) // a half-made disk of an interrupted run
	if err := os.Rename(tmp, dir); err != nil {
		return Disk{}, fmt.Errorf("vm: %w", err)
	}
	fmt.Fprintf(log, "vm: disk ready in %s\n", time.Since(start).Round(time.Second))
	return d, nil
}

// configureRoot writes the guest's files and unit links, and its apt
// sources (the mirror the disk was made from).
func configureRoot(root, mirror string) error {
	for rel, data := range guestFiles {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		os.Remove(p) // resolv.conf may be a link
		mode := os.FileMode(0o644)
		if strings.HasPrefix(rel, "usr/local/sbin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			return err
		}
	}
	for rel, target := range guestLinks {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	sources := fmt.Sprintf("Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n", mirror, suite)
	os.Remove(filepath.Join(root, "etc/apt/sources.list"))
	return os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/debian.sources"), []byte(sources), 0o644)
}

// Mirror is the Debian archive this machine's apt sources name (its main
// archive, not the security one): the VM is made from it, and never from a
// host name written here. The sources are read as the image builds read
// them (image.HostDebianMirror).
func Mirror() (string, error) {
	m, err := image.HostDebianMirror()
	if err != nil {
		return "", fmt.Errorf("vm: %w: the VM is made from the mirror they name", err)
	}
	return strings.TrimRight(m, "/"), nil
}

// run runs argv (no shell), its output to log, under ctx.
func run(ctx context.Context, log io.Writer, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var tail tailWriter
	cmd.Stdout, cmd.Stderr = io.MultiWriter(log, &tail), io.MultiWriter(log, &tail)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("vm: %s: %w", argv[0], ctx.Err())
		}
		return fmt.Errorf("vm: %s: %v: %s", argv[0], err, tail.last())
	}
	return nil
}

// tailWriter keeps the last line written to it.
type tailWriter struct{ buf []byte }

func (t *tailWriter) Write(b []byte) (int, error) {
	t.buf = append(t.buf, b...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(b), nil
}

func (t *tailWriter) last() string {
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
