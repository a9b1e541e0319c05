# Step helpers for benchmarks/gpu_check.sh, sourced (and exercised by tests/cli/test_gpu_check.py
# without a GPU). A step records a failure in the caller's shell: `status` becomes 1.
#
#   step CMD ARGS...              run CMD; on failure print "!! FAILED" and set status=1
#   step_logged LOG N CMD ARGS... the same, its output (stdout and stderr) saved to LOG with
#                                 only the last N lines shown. Not `step CMD | tee | tail`: a
#                                 pipeline runs `step` in a subshell, whose status=1 is lost.
status=${status:-0}

step() {
  echo "== $*"
  "$@" || { echo "!! FAILED: $*"; status=1; }
}

step_logged() {
  local log=$1 lines=$2
  shift 2
  echo "== $*"
  "$@" 2>&1 | tee "$log" | tail -n "$lines"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "!! FAILED (exit $rc): $*"
    status=1
  fi
}
