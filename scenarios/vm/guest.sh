#!/bin/sh
# nuh-vm-guest: runs the job the host put on the input disk (/dev/vdb, a
# tar with job.sh), writes what the job left in its output directory onto
# the output disk (/dev/vdc, a tar), says each of these on the console
# (ttyS0, which the host reads), and powers the VM off.
set -u
# A line of its own, whatever else the console had on its last line.
say() { printf '\nnuh-vm: %s\n' "$*" > /dev/ttyS0; }
in=/var/tmp/nuh/in out=/var/tmp/nuh/out
rm -rf /var/tmp/nuh
mkdir -p "$in" "$out"
say "guest up: $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup)"
rc=99
if tar -xf /dev/vdb -C "$in"; then
	cd "$in" && sh ./job.sh "$out" > "$out/job.log" 2>&1
	rc=$?
else
	say "the input disk holds no tar"
fi
tar -cf /dev/vdc -C "$out" . || say "writing the output disk failed"
sync
say "job done: exit $rc"
systemctl poweroff
