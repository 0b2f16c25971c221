#!/bin/sh
# Installs what the tests need and the tool does not (the tool itself needs
# a container engine and nothing else on the host): debootstrap, QEMU with
# qemu-img and e2fsprogs (the `vm` spec's cgroup v2 Debian trixie VM and its
# disk, docs/vm.md), chromium with a font (the test that renders
# report.html as a person sees it), and debian-archive-keyring (the test
# that holds the archive keys the tool embeds to the package they came
# from), and podman with catatonit (its --init) and its network stack
# (the `podman` spec: rootful Podman's Docker-compatible API). Idempotent; refreshes the package lists only when a first install
# fails.
set -eu

pkgs="debootstrap chromium fonts-dejavu-core qemu-system-x86 qemu-utils e2fsprogs debian-archive-keyring podman catatonit netavark aardvark-dns"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && { echo "deps: the tests' host tools all present ($pkgs)"; exit 0; }

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
	$SUDO apt-get update
	# shellcheck disable=SC2086
	$SUDO apt-get install -y --no-install-recommends $missing
fi
echo "deps: installed for the tests:$missing"
