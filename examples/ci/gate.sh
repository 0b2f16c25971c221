#!/bin/sh
# gate.sh OUT COMMAND [ARG...]
#
# Runs `COMMAND ARG... --out OUT --junit OUT/junit.xml` (an
# nginx-upgrade-harness run) and turns its exit code into the gate's:
#   0 pass; 1 a scenario did not meet its expectation; 2 bad input or the
#   harness could not start: exits at once with that code, no retry.
#   3 the measurement was invalid: the first attempt is kept as OUT-attempt-1
#   and the run is retried once into OUT. A second 3 fails the gate (exit 3):
#   an invalid measurement is never a pass.
# Under GitHub Actions the outcome is also written to $GITHUB_OUTPUT
# (exit=N, attempts=N). The command is run as given, never through a shell.
set -u

if [ "$#" -lt 2 ]; then
	echo "usage: gate.sh OUT COMMAND [ARG...]" >&2
	exit 2
fi
out=$1
shift

attempt() {
	"$@" --out "$out" --junit "$out/junit.xml"
}

outcome() {
	if [ -n "${GITHUB_OUTPUT:-}" ]; then
		printf 'exit=%s\nattempts=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
	fi
	exit "$1"
}

attempt "$@"
code=$?
case $code in
0) echo "gate: pass"; outcome 0 1 ;;
1) echo "gate: fail: a scenario did not meet its expectation (exit 1, not retried)" >&2; outcome 1 1 ;;
2) echo "gate: the run could not start (exit 2, not retried): see the line above" >&2; outcome 2 1 ;;
3) ;;
*) echo "gate: the run ended with exit $code (not retried)" >&2; outcome "$code" 1 ;;
esac

echo "gate: measurement invalid (exit 3): retrying once; the first attempt is kept in $out-attempt-1" >&2
rm -rf "$out-attempt-1"
if [ -e "$out" ] && ! mv "$out" "$out-attempt-1"; then
	echo "gate: cannot keep the first attempt ($out → $out-attempt-1): not retried" >&2
	outcome 3 1
fi
attempt "$@"
code=$?
case $code in
0) echo "gate: pass after one retry (the first attempt's measurement was invalid)"; outcome 0 2 ;;
3) echo "gate: measurement invalid twice (exit 3): not a pass" >&2; outcome 3 2 ;;
*) echo "gate: retry ended with exit $code" >&2; outcome "$code" 2 ;;
esac
