package vm

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Job is what the VM runs: job.sh (Script) with the files beside it, and
// the tar of images `docker load` reads from the images disk.
type Job struct {
	Script string            // run as `sh job.sh OUT`; what it leaves in OUT comes back
	Files  map[string]string // name in the job's directory → file on this machine
	Images string            // a `docker save` tar, read in the guest from /dev/vdd ("" for none)
}

// Machine is a running VM: QEMU on a throwaway overlay of a Disk.
type Machine struct {
	dir     string
	console string
	out     string
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	Accel   string // "kvm" or "tcg"
}

// Options of Boot.
type Options struct {
	CPUs     int
	MemoryMB int
}

// Boot starts QEMU on an overlay of disk (made in a new directory under
// workDir, removed by Close) with the job's input disk, an empty output
// disk and the images disk, under KVM when this machine really has it,
// else under software emulation. It returns once QEMU runs; the guest
// runs the job on its own (Wait for its console lines).
func Boot(ctx context.Context, disk Disk, job Job, workDir string, o Options) (*Machine, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, errors.New("vm: qemu-system-x86_64 not found: `make deps` installs qemu-system-x86")
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return nil, errors.New("vm: qemu-img not found: `make deps` installs qemu-utils")
	}
	dir, err := os.MkdirTemp(workDir, "vm-")
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	m := &Machine{dir: dir, console: filepath.Join(dir, "console.log"), out: filepath.Join(dir, "out.img"), exited: make(chan struct{})}
	overlay := filepath.Join(dir, "overlay.qcow2")
	if err := run(ctx, io.Discard, "qemu-img", "create", "-q", "-f", "qcow2", "-b", disk.Image, "-F", "raw", overlay); err != nil {
		return nil, err
	}
	in := filepath.Join(dir, "in.tar")
	if err := writeInput(in, job); err != nil {
		return nil, fmt.Errorf("vm: input disk: %w", err)
	}
	if err := run(ctx, io.Discard, "truncate", "-s", "256M", m.out); err != nil {
		return nil, err
	}
	images := job.Images
	if images == "" {
		images = filepath.Join(dir, "no-images.tar")
		if err := os.WriteFile(images, make([]byte, 1024), 0o644); err != nil {
			return nil, fmt.Errorf("vm: %w", err)
		}
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 3072
	}
	m.Accel = "tcg"
	accel := []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
	if KVMUsable(ctx, qemu, disk) {
		m.Accel = "kvm"
		accel = []string{"-enable-kvm", "-cpu", "host"}
	}
	args := append(accel,
		"-smp", fmt.Sprint(o.CPUs), "-m", fmt.Sprint(o.MemoryMB),
		"-kernel", disk.Kernel, "-initrd", disk.Initrd, "-append", kernelArgs,
		"-drive", "file="+overlay+",format=qcow2,if=virtio",
		"-drive", "file="+in+",format=raw,if=virtio,readonly=on",
		"-drive", "file="+m.out+",format=raw,if=virtio",
		"-drive", "file="+images+",format=raw,if=virtio,readonly=on",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
		"-display", "none", "-monitor", "none", "-serial", "file:"+m.console,
		"-no-reboot")
	m.cmd = exec.Command(qemu, args...)
	var stderr tailWriter
	m.cmd.Stdout, m.cmd.Stderr = &stderr, &stderr
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("vm: start qemu: %w", err)
	}
	go func() {
		err := m.cmd.Wait()
		if err != nil && stderr.last() != "" {
			err = fmt.Errorf("%v: %s", err, stderr.last())
		}
		m.exitErr = err
		close(m.exited)
	}()
	// QEMU that cannot start (no accelerator, a bad disk) exits at once:
	// say so now, with its own words, rather than at the first wait.
	select {
	case <-m.exited:
		return nil, fmt.Errorf("vm: qemu exited at start (%s): %v", m.Accel, m.exitErr)
	case <-time.After(2 * time.Second):
	}
	return m, nil
}

// writeInput writes the input disk: a tar of job.sh and the job's files.
func writeInput(path string, job Job) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, r io.Reader, size int64, mode int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: mode, ModTime: time.Now()}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := add("job.sh", strings.NewReader(job.Script), int64(len(job.Script)), 0o755); err != nil {
		return err
	}
	for _, name := range sortedKeys(job.Files) {
		src, err := os.Open(job.Files[name])
		if err != nil {
			return err
		}
		st, err := src.Stat()
		if err == nil {
			err = add(name, src, st.Size(), int64(st.Mode().Perm()))
		}
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	// A disk is whole sectors; tar's blocks are 512 bytes already.
	return f.Close()
}

// Wait waits until the console has a line matching re, for at most
// timeout, and returns it. It fails, with the console's last lines, when
// the VM exits first or the time is up.
func (m *Machine) Wait(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		data, _ := os.ReadFile(m.console)
		for _, l := range strings.Split(string(data), "\n") {
			if re.MatchString(l) {
				return strings.TrimSpace(l), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("vm: waiting for %q: %w", re, ctx.Err())
		case <-deadline.C:
			return "", fmt.Errorf("vm: no %q on the console within %s; it ends: %s", re, timeout, m.ConsoleTail(3))
		case <-m.exited:
			data, _ := os.ReadFile(m.console)
			for _, l := range strings.Split(string(data), "\n") {
				if re.MatchString(l) {
					return strings.TrimSpace(l), nil
				}
			}
			return "", fmt.Errorf("vm: qemu exited (%v) before %q; the console ends: %s", m.exitErr, re, m.ConsoleTail(3))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ConsoleTail is the console's last n non-empty lines, joined by " | ".
func (m *Machine) ConsoleTail(n int) string {
	data, _ := os.ReadFile(m.console)
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(data), "\r", ""), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Console is where the guest's console is written.
func (m *Machine) Console() string { return m.console }

// WaitExit waits, at most timeout, for the guest to power off.
func (m *Machine) WaitExit(timeout time.Duration) error {
	select {
	case <-m.exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("vm: still running %s after the job ended; the console ends: %s", timeout, m.ConsoleTail(3))
	}
}

// Results extracts the output disk (the tar the guest wrote) into dir.
// Call it once the VM has exited.
func (m *Machine) Results(dir string) error {
	f, err := os.Open(m.out)
	if err != nil {
		return fmt.Errorf("vm: output disk: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("vm: output disk: %w", err)
		}
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, tr); err != nil {
				return fmt.Errorf("vm: output disk: %s: %w", name, err)
			}
			if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("vm: the output disk holds no file; the console ends: %s", m.ConsoleTail(3))
	}
	return nil
}

// Close kills QEMU if it still runs and removes the overlay and disks.
func (m *Machine) Close() error {
	if m == nil {
		return nil
	}
	select {
	case <-m.exited:
	default:
		m.cmd.Process.Kill()
		<-m.exited
	}
	return os.RemoveAll(m.dir)
}

var kvmOnce struct {
	sync.Once
	ok bool
}

// KVMUsable tells whether this machine really has KVM: /dev/kvm opens
// read-write AND QEMU under -enable-kvm runs the VM's kernel to its first
// console lines (a paravirtual /dev/kvm, as on some cloud machines, opens
// but QEMU aborts on it: "failed to set MSR", "KVM internal error"). The
// probe boots the kernel alone, with no root: it panics at once, and
// -no-reboot ends QEMU. Measured once per process.
func KVMUsable(ctx context.Context, qemu string, disk Disk) bool {
	kvmOnce.Do(func() {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			return
		}
		f.Close()
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(pctx, qemu, "-enable-kvm", "-cpu", "host", "-m", "256", "-smp", "1",
			"-kernel", disk.Kernel, "-append", "console=ttyS0 panic=-1", "-display", "none", "-monitor", "none",
			"-serial", "stdio", "-no-reboot").CombinedOutput()
		kvmOnce.ok = bytes.Contains(out, []byte("Linux version")) && bytes.Contains(out, []byte("Kernel panic"))
	})
	return kvmOnce.ok
}
