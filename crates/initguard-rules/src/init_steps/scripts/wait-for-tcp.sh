connects() { nc -z -w 2 "$TARGET_HOST" "$TARGET_PORT" >/dev/null 2>&1; }
retry "$TARGET_HOST:$TARGET_PORT accepts connections" connects
