#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, one after another, and reports executions and
# crashes per target. Exit status is non-zero if any target crashed (or failed to build/run).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 120)
#
# Environment: FUZZ_TARGETS="token context" to run a subset; FUZZ_ARGS for extra libFuzzer flags.
#
# Targets run one at a time, each in a single process (libFuzzer's default: no -jobs/-workers), so
# fuzzing uses one core. The targets live in fuzz/ (its own Cargo workspace, not a member of the root one) and build into
# fuzz/target, so fuzzing never touches the workspace build. New corpus entries go to
# fuzz/target/corpus/<target> (not committed); the committed seeds in fuzz/corpus/<target> are
# read only. Crashing inputs land in fuzz/artifacts/<target>/.
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them.
set -euo pipefail

seconds="${1:-120}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets=(${FUZZ_TARGETS:-token context public_key_document})
target_dir="$root/fuzz/target"
logs="$target_dir/logs"
mkdir -p "$logs"

echo "== building ${targets[*]}"
for t in "${targets[@]}"; do
    cargo fuzz build --fuzz-dir fuzz --target-dir "$target_dir" "$t"
done

# crash-, oom-, timeout- and leak- files are findings; slow-unit- files are not.
count_findings() {
    find "$1" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l
}

summary=()
status=0
for t in "${targets[@]}"; do
    corpus="$target_dir/corpus/$t"
    artifacts="$root/fuzz/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    before=$(count_findings "$artifacts")
    log="$logs/$t.log"
    echo "== fuzzing $t for ${seconds}s (log: ${log#"$root"/})"
    set +e
    # shellcheck disable=SC2086
    cargo fuzz run --fuzz-dir fuzz --target-dir "$target_dir" "$t" "$corpus" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
    if [[ -z "$execs" ]]; then
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
    fi
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
    after=$(count_findings "$artifacts")
    crashes=$((after - before))
    if [[ $rc -ne 0 && $crashes -eq 0 ]]; then
        # A failure without an artifact (build error, OOM before the first unit...) still counts.
        crashes="? (exit $rc)"
    fi
    if [[ $rc -ne 0 ]]; then
        status=1
        echo "!! $t failed; last lines of its log:"
        tail -n 40 "$log"
        ls -t "$artifacts" | head -n 5 | sed "s|^|   fuzz/artifacts/$t/|"
    fi
    summary+=("$(printf '%-22s executions=%-12s exec/s=%-8s crashes=%s' "$t" "${execs:-?}" "${rate:-?}" "$crashes")")
done

echo "== fuzzing summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [[ $status -ne 0 ]]; then
    echo "crashing inputs are in fuzz/artifacts/<target>/; reproduce with:"
    echo "  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --target-dir fuzz/target <target> <file>"
fi
exit $status
