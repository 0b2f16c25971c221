#!/bin/sh
# A packaging script's in-place upgrade, done right: the new binary in
# place, USR2, and only once the new master runs (nginx.pid moved to
# nginx.pid.oldbin, a new pid in nginx.pid) WINCH and QUIT to the old one.
# When the new binary cannot start it puts the old one back and exits 1.
set -eu
old=$(cat "$NGINX_PID_FILE")
cp "$NGINX_NEW_BINARY" "$NGINX_BINARY.tmp" && mv -f "$NGINX_BINARY.tmp" "$NGINX_BINARY"
kill -USR2 "$old"
i=0
until new=$(cat "$NGINX_PID_FILE" 2>/dev/null) && [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null; do
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
echo "upgrade: new master $(cat "$NGINX_PID_FILE")"
