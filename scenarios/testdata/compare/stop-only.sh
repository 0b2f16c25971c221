#!/bin/sh
# A packaging script that stops nginx to replace its binary and never
# starts it again: nginx is down, whatever the build.
set -eu
old=$(cat "$NGINX_PID_FILE")
cp "$NGINX_NEW_BINARY" "$NGINX_BINARY.tmp" && mv -f "$NGINX_BINARY.tmp" "$NGINX_BINARY"
kill -QUIT "$old"
