# Shared by every initguard init step. Parameters arrive in the environment, never in the
# script text: INITGUARD_STEP names the step, INITGUARD_TIMEOUT bounds it in seconds and
# INITGUARD_INTERVAL spaces retries. Each step exits 0 when done, 1 with a reason when not.
set -u
deadline=$(( $(date +%s) + INITGUARD_TIMEOUT ))
attempt=0
say() { echo "initguard $INITGUARD_STEP: $*"; }
fail() { echo "initguard $INITGUARD_STEP: $*" >&2; exit 1; }
# retry DESCRIPTION COMMAND...: runs COMMAND until it succeeds or the deadline passes.
retry() {
  what=$1
  shift
  while [ "$(date +%s)" -lt "$deadline" ] || [ "$attempt" -eq 0 ]; do
    attempt=$((attempt + 1))
    if "$@"; then
      say "$what (attempt $attempt)"
      return 0
    fi
    [ "$(( $(date +%s) + INITGUARD_INTERVAL ))" -le "$deadline" ] || break
    sleep "$INITGUARD_INTERVAL"
  done
  fail "gave up after ${INITGUARD_TIMEOUT}s and $attempt attempts: $what did not happen"
}
