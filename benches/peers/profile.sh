#!/bin/bash
# Profiles one engine's child process of the peers suite with perf.
#
#   benches/peers/profile.sh ENGINE WORKLOAD [N] [SECS]
#
# WORKLOAD is one --only group (read, scan, ycsb-e, ...; "none" profiles
# just the load and the reopen, which every child runs first). Writes
# target/peers/profile-ENGINE-WORKLOAD.{data,txt}; the .txt is the flat
# profile by symbol. Build the suite first (cargo build --release
# --manifest-path benches/peers/Cargo.toml [--features rocksdb]).
set -euo pipefail
engine=${1:?engine}
workload=${2:?workload}
n=${3:-1000000}
secs=${4:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/benches/peers/target/release/strata-peers
out=$root/target/peers
mkdir -p "$out"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
settings="{\"n\":$n,\"secs\":$secs.0,\"cache_bytes\":67108864,\"only\":[\"$workload\"],\"r2w2_threads\":[1],\"contention_threads\":[2],\"ycsb_threads\":2}"
base=$out/profile-$engine-$workload
perf record -F 999 -g -o "$base.data" -- \
    "$bin" child --engine "$engine" --settings "$settings" --dir "$dir/db" > "$base.json"
perf report -i "$base.data" --no-children --sort symbol -g none --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -40 > "$base.txt"
cat "$base.txt"
