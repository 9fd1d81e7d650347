#!/usr/bin/env bash
# Runs one stage of `make test` and prints when it started and how long it
# took, from the start of the whole run (STAGE_T0, seconds since the epoch):
#
#   hack/stage.sh NAME COMMAND [ARGS...]
#
# With STAGE_LOG set, it also appends "NAME START END STATUS" to that file;
# hack/stage-summary.sh prints them as a table when the run ends.
set -uo pipefail
name=$1
shift
t0=${STAGE_T0:-$(date +%s)}
start=$(($(date +%s) - t0))
printf '== stage %s: started at %ds\n' "$name" "$start" >&2
"$@"
rc=$?
end=$(($(date +%s) - t0))
status=ok
((rc == 0)) || status="failed($rc)"
printf '== stage %s: %s in %ds (ended at %ds)\n' "$name" "$status" "$((end - start))" "$end" >&2
[[ -n ${STAGE_LOG:-} ]] && printf '%s %d %d %s\n' "$name" "$start" "$end" "$status" >>"$STAGE_LOG"
exit "$rc"
