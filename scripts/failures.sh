#!/bin/sh
# Each failed spec of a suite run and the first lines of its failure
# message, from the run's JUnit report: printed last by make scenarios when
# the suite fails, so that the end of a CI log says what failed and why
# (Ginkgo's own summary there names only the spec and its line).
# Usage: sh scripts/failures.sh reports-out/junit.xml
set -eu
junit=${1:-reports-out/junit.xml}
[ -r "$junit" ] || { echo "failures: $junit: no JUnit report (the suite did not get to write one)"; exit 0; }
awk '
function unxml(s) {
	gsub(/&#xA;/, "\n", s); gsub(/&#x9;/, "\t", s); gsub(/&#34;/, "\"", s); gsub(/&#39;/, "\047", s)
	gsub(/&quot;/, "\"", s); gsub(/&lt;/, "<", s); gsub(/&gt;/, ">", s); gsub(/&amp;/, "\\&", s)
	return s
}
/<testcase name="/ { name = $0; sub(/.*<testcase name="/, "", name); sub(/".*/, "", name) }
/<(failure|error) message="/ {
	msg = $0; sub(/.*<(failure|error) message="/, "", msg); sub(/" type="[^"]*".*/, "", msg)
	n++
	printf "\n== failed %d: %s\n", n, unxml(name)
	k = split(unxml(msg), lines, "\n")
	for (i = 1; i <= k && i <= 40; i++) print "   " lines[i]
	if (k > 40) printf "   … (%d more lines in %s)\n", k - 40, FILENAME
}
END { if (n == 0) print "failures: no failed spec in the JUnit report" }
' "$junit"
