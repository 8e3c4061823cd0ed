say "waiting ${DELAY_SECONDS}s"
sleep "$DELAY_SECONDS"
