#!/bin/sh
# A script whose race goes both ways, forced by the run's index under
# compare --repeat: odd runs wait for the new master, even runs do not.
set -eu
old=$(cat "$NGINX_PID_FILE")
cp "$NGINX_NEW_BINARY" "$NGINX_BINARY.tmp" && mv -f "$NGINX_BINARY.tmp" "$NGINX_BINARY"
kill -USR2 "$old"
if [ $((${NGINX_UPGRADE_RUN:-1} % 2)) -eq 1 ]; then
	i=0
	until new=$(cat "$NGINX_PID_FILE" 2>/dev/null) && [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -gt 50 ] && exit 1
		sleep 0.1
	done
	kill -WINCH "$old"
fi
kill -QUIT "$old"
