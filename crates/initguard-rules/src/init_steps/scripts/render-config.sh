found=0
for template in "$TEMPLATE_DIR"/*; do
  [ -f "$template" ] || continue
  found=1
  name=$(basename "$template")
  partial="$OUTPUT_DIR/.initguard-render.$name"
  # Substitute pod facts known only at run time; values are escaped for sed's replacement.
  ip=$(printf '%s' "${POD_IP:-}" | sed 's/[&|\\]/\\&/g')
  pod=$(printf '%s' "${POD_NAME:-}" | sed 's/[&|\\]/\\&/g')
  ns=$(printf '%s' "${POD_NAMESPACE:-}" | sed 's/[&|\\]/\\&/g')
  sed -e "s|\${POD_IP}|$ip|g" -e "s|\${POD_NAME}|$pod|g" -e "s|\${POD_NAMESPACE}|$ns|g" \
    "$template" > "$partial" || fail "cannot render $name"
  mv -f "$partial" "$OUTPUT_DIR/$name" || fail "cannot write $OUTPUT_DIR/$name"
  say "rendered $name"
done
[ "$found" -eq 1 ] || fail "no templates in $TEMPLATE_DIR: is the ConfigMap empty?"
