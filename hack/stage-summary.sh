#!/usr/bin/env bash
# Prints the stages hack/stage.sh logged to STAGE_LOG, in the order they ended.
set -euo pipefail
log=${1:?usage: hack/stage-summary.sh STAGE_LOG}
[[ -s $log ]] || exit 0
printf '\n%-16s %8s %8s %8s  %s\n' stage start end seconds status
while read -r name start end status; do
  printf '%-16s %7ds %7ds %7ds  %s\n' "$name" "$start" "$end" "$((end - start))" "$status"
done <"$log"
