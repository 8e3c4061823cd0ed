[ -n "${POD_IP:-}" ] || fail "POD_IP is empty: the downward API did not provide the pod's address"
post() { wget -q -T 5 -O /dev/null --post-data "instance=${POD_NAME}&ip=${POD_IP}&namespace=${POD_NAMESPACE}" "$REGISTER_URL"; }
retry "registered $POD_NAME ($POD_IP) at $REGISTER_URL" post
