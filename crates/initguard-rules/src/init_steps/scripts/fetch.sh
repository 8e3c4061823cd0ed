partial="$(dirname "$FETCH_PATH")/.initguard-fetch.$$"
download() { rm -f "$partial"; wget -q -T 10 -O "$partial" "$FETCH_URL"; }
retry "downloaded $FETCH_URL" download
# Rename within one directory is atomic: readers see the old file or the whole new one.
mv -f "$partial" "$FETCH_PATH" || fail "cannot write $FETCH_PATH"
say "wrote $FETCH_PATH"
