#!/bin/sh
# What each Ginkgo label cost in a run of the suite, from its JUnit report
# (make test writes reports-out/junit.xml): a Markdown row per label with
# the specs that carry it and the seconds they took, added up as if run
# one after the other. Labels overlap (a chaos entry is also upgrade), so
# the rows do not add up; "all" and "Serial" do.
# Usage: sh scripts/spec-costs.sh [reports-out/junit.xml]
set -eu
junit=${1:-reports-out/junit.xml}
[ -r "$junit" ] || { echo "spec-costs: $junit: no such JUnit report (run make test first)" >&2; exit 2; }
grep '<testcase name="\[It\]' "$junit" | grep -v 'status="skipped"' |
awk '
{
	name = $0; sub(/.*<testcase name="/, "", name); sub(/".*/, "", name)
	t = $0; sub(/.* time="/, "", t); sub(/".*/, "", t)
	labels = name; if (!sub(/.*\[/, "", labels)) labels = ""; sub(/\].*/, "", labels)
	n = split(labels, ls, /, /)
	all += t; alln++
	for (i = 1; i <= n; i++) { sum[ls[i]] += t; cnt[ls[i]]++ }
}
END {
	print "| label | specs | seconds, one after the other |"
	print "| --- | ---: | ---: |"
	for (l in sum) printf "| `%s` | %d | %.0f |\n", l, cnt[l], sum[l] | "sort"
	close("sort")
	printf "| all | %d | %.0f |\n", alln, all
}'
