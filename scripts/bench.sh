#!/bin/sh
# make bench: the harness's own performance, measured on one nginx container.
#  1. highest sustained rate of the harness's load vs the vegeta CLI (-rate=0),
#     with nginx's own log of every request (the second witness) on and off,
#     and that log's size per 100,000 requests; and the rate it holds in
#     every phase while the upgrade's steps run
#  2. peak memory over 1,000,000 requests, then the time to render their reports
#  3. Go benchmarks of the hot paths (loadgen) and of rendering 1M results (reports)
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
VEGETA=$($GO env GOPATH)/bin/vegeta
[ -x "$VEGETA" ] || $GO install github.com/tsenart/vegeta/v12@v12.13.0
$GO build -o bin/harness-bench ./cmd/harness-bench
echo "== 1. highest sustained rate"
# NUH_TO names the pair's new build (default: debian:bookworm-security).
./bin/harness-bench -mode rate -vegeta "$VEGETA" ${NUH_TO:+-to "$NUH_TO"}
echo "== 1b. rate held in every phase while the upgrade's steps run (GET, keep-alive)"
./bin/harness-bench -mode steps ${NUH_TO:+-to "$NUH_TO"}
echo "== 2. memory over 1,000,000 requests, and report rendering"
./bin/harness-bench -mode memory ${NUH_TO:+-to "$NUH_TO"}
echo "== 3. Go benchmarks"
$GO test -run '^$' -bench . -benchmem -benchtime 1x ./reports/
$GO test -run '^$' -bench . -benchmem ./loadgen/
