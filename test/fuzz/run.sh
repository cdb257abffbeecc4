#!/bin/sh
# Run libFuzzer targets built in build/fuzz/: each one first replays its
# seed corpus (test/fuzz/corpus/NAME), then fuzzes for SECONDS. New inputs
# go to build/fuzz/corpus-NAME (the repository's corpus only changes by
# hand); with FUZZ_KEEP=1 (make fuzz) that directory is kept and replayed
# by the next run too, else (make test) it starts empty, so the time spent
# replaying stays fixed. A crash or a failed property stops the run; the
# input is left in build/fuzz/crash-*.
#
# Usage: [FUZZ_KEEP=1] test/fuzz/run.sh SECONDS NAME...
# Prints, and appends to $RINGSLOT_METRICS_FILE (/tmp/resilience_metrics.txt),
# "METRIC fuzz_NAME_execs=N".
set -e
seconds=$1
shift
metrics=${RINGSLOT_METRICS_FILE:-/tmp/resilience_metrics.txt}
for name in "$@"; do
    bin=build/fuzz/fuzz_$name
    seeds=test/fuzz/corpus/$name
    work=build/fuzz/corpus-$name
    log=build/fuzz/$name.log
    [ "${FUZZ_KEEP:-0}" = 1 ] || rm -rf "$work"
    mkdir -p "$work"
    echo "== fuzz_$name: $(ls "$seeds" | wc -l) seeds, $(ls "$work" | wc -l) found earlier, ${seconds}s"
    if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 \
            -artifact_prefix=build/fuzz/ "$work" "$seeds" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz_$name FAILED (full log: $log)"
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "METRIC fuzz_${name}_execs=$execs (${rate}/s, ${seconds}s)" | tee -a "$metrics"
done
