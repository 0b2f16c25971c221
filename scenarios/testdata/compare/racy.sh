#!/bin/sh
# A script whose race is forced to go both ways by the run's index under
# compare --repeat: odd runs upgrade (USR2, wait for the new master, WINCH,
# QUIT), even runs lose the race outright (QUIT reaches the old master
# before any new one exists: nginx goes down).
set -eu
old=$(cat "$NGINX_PID_FILE")
cp "$NGINX_NEW_BINARY" "$NGINX_BINARY.tmp" && mv -f "$NGINX_BINARY.tmp" "$NGINX_BINARY"
if [ $((${NGINX_UPGRADE_RUN:-1} % 2)) -eq 0 ]; then
	kill -QUIT "$old"
	exit 0
fi
kill -USR2 "$old"
i=0
until new=$(cat "$NGINX_PID_FILE" 2>/dev/null) && [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null; do
	i=$((i + 1))
	[ "$i" -gt 50 ] && exit 1
	sleep 0.1
done
kill -WINCH "$old"
kill -QUIT "$old"
