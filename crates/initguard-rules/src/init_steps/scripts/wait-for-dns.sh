resolves() { nslookup "$TARGET" >/dev/null 2>&1; }
retry "$TARGET resolves" resolves
