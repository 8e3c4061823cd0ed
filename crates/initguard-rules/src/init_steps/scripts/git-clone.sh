if [ -d "$GIT_DIR/.git" ]; then
  say "$GIT_DIR already holds a checkout; leaving it as it is"
  exit 0
fi
clone() {
  rm -rf "$GIT_DIR/.initguard-clone"
  # One attempt may use what is left of the step's time, never more.
  left=$(( deadline - $(date +%s) ))
  [ "$left" -gt 0 ] || left=1
  if [ -n "$GIT_REF" ]; then
    timeout "$left" git clone --quiet --depth 1 --branch "$GIT_REF" -- "$GIT_REPO" "$GIT_DIR/.initguard-clone"
  else
    timeout "$left" git clone --quiet --depth 1 -- "$GIT_REPO" "$GIT_DIR/.initguard-clone"
  fi
}
retry "cloned $GIT_REPO" clone
# Move the checkout into place only once it is complete, so a failed clone leaves nothing.
for entry in "$GIT_DIR/.initguard-clone"/* "$GIT_DIR/.initguard-clone"/.[!.]*; do
  [ -e "$entry" ] && mv "$entry" "$GIT_DIR/"
done
rmdir "$GIT_DIR/.initguard-clone"
