answers() { wget -q -T 5 -O /dev/null "$TARGET" >/dev/null 2>&1; }
retry "$TARGET answers with success" answers
