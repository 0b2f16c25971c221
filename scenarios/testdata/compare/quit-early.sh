#!/bin/sh
# A packaging script's mistake: QUIT to the old master right after USR2,
# without waiting for the new master to run.
set -eu
old=$(cat "$NGINX_PID_FILE")
cp "$NGINX_NEW_BINARY" "$NGINX_BINARY.tmp" && mv -f "$NGINX_BINARY.tmp" "$NGINX_BINARY"
kill -USR2 "$old"
kill -QUIT "$old"
