#!/bin/sh
# An upgrade that talks to systemd, as distribution scripts do (Fedora's
# nginx-upgrade signals through systemctl kill): the pid file from the
# unit, USR2 through systemd, and once the new master runs, WINCH and QUIT
# to the old one. When the new binary cannot start it puts the old one
# back and exits 1.
set -eu
pidfile=$(systemctl show -p PIDFile --value nginx.service)
old=$(cat "$pidfile")
cp "$NGINX_NEW_BINARY" "$NGINX_BINARY.tmp" && mv -f "$NGINX_BINARY.tmp" "$NGINX_BINARY"
systemctl kill --signal=SIGUSR2 nginx.service
i=0
until new=$(cat "$pidfile" 2>/dev/null) && [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null; do
	i=$((i + 1))
	if [ "$i" -gt 50 ]; then
		echo "upgrade: no new master after 5 s; the old binary goes back" >&2
		cp "$NGINX_OLD_BINARY" "$NGINX_BINARY.tmp" && mv -f "$NGINX_BINARY.tmp" "$NGINX_BINARY"
		exit 1
	fi
	sleep 0.1
done
kill -WINCH "$old"
kill -QUIT "$old"
echo "upgrade: new master $(cat "$pidfile"), systemd's: $(systemctl show -p MainPID --value nginx.service)"
