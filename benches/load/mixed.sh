# The mixed workload of `run` (sourced after lib.sh when WORKLOAD is mixed or mixed-uncached):
# Portcullis serves the seeded policy file (benches/load/seed: 100,000 nodes, 10,000 users,
# 50 groups, 5,000 entries) from its file store, with eight Delivery API keys made by
# `portcullis keys create` (offline, as an operator makes them: peppered hash in the file),
# four of them scoped to a top-level subtree. wrk sends mix.py's requests through mixed.lua.
MIX=$WORK/mix
mkdir -p "$MIX"
case $WORKLOAD in
  mixed) MIX_MODE=cached ;;
  mixed-uncached) MIX_MODE=uncached ;;
esac
if [ -z "${SEED:-}" ]; then
  SEED=$WORK/seed.toml
  echo "no SEED=FILE given: generating one (benches/load/seed $SEED)"
  "$ROOT/benches/load/seed" "$SEED" >"$WORK/seed.out" 2>&1 || { tail -n 20 "$WORK/seed.out" >&2; die "seed"; }
fi
[ -s "$SEED" ] || die "SEED=$SEED: no such file (make one with benches/load/seed FILE)"
cp "$SEED" "$WORK/policy.toml"

# --- API keys, made as an operator makes them ----------------------------------------------------
# `keys create --config` validates and rewrites the whole policy file per key (26 s each on the
# seed in a debug build), so the keys are made against a file holding only their subtree
# roots, and their [[api_keys]] tables (hash, scope: what the command wrote) are appended to
# the seeded file.
mapfile -t ROOTS < <(python3 "$ROOT/benches/load/mix.py" roots "$SEED" 4)
[ "${#ROOTS[@]}" = 4 ] || die "the seed has fewer than 4 top-level documents"
cp "$WORK/portcullis.toml" "$MIX/portcullis.toml"
for k in 0 1 2 3; do
  printf '[[nodes]]\nkey = "%s"\nid = %d\nkind = "document"\n\n' "${ROOTS[$k]}" $((k + 1))
done >"$MIX/policy.toml"
make_key() { # NAME [SUBTREE_ROOT]: prints "full key<TAB>root or -"
  local args=(keys create --config "$MIX/portcullis.toml" --name "$1" --owner bench-user-0
    --api delivery) out
  [ -n "${2:-}" ] && args+=(--subtree-root "$2")
  out=$(PORTCULLIS_KEY_PEPPER=$PEPPER timeout 60 "$PCL" "${args[@]}" 2>"$MIX/keys.err") ||
    { cat "$MIX/keys.err" >&2; die "portcullis keys create $1 failed"; }
  printf '%s\t%s\n' "$(awk '$1=="secret" {print $2}' <<<"$out")" "${2:--}"
}
t0=$(date +%s)
{
  for k in 1 2 3 4; do make_key "bench-site-$k"; done
  for k in 1 2 3 4; do make_key "bench-section-$k" "${ROOTS[$((k - 1))]}"; done
} >"$MIX/keys.tsv"
awk '/^\[\[/ {keep = ($0 == "[[api_keys]]")} keep' "$MIX/policy.toml" >>"$WORK/policy.toml"
[ "$(grep -c '^\[\[api_keys\]\]' "$WORK/policy.toml")" = 8 ] || die "the 8 keys are not in the policy file"
echo "8 API keys made with portcullis keys create in $(($(date +%s) - t0)) s"
python3 "$ROOT/benches/load/mix.py" requests "$SEED" "$MIX/keys.tsv" "$WORK/key.pem" \
  "$MIX" "$MIX_MODE" ${MIX_LINES:-20000} ${MIX_TOKENS:-60000} | tee "$MIX/summary.txt"

# mix_wrk TARGET SECONDS [wrk options]: the mix against TARGET (upstream and pingora check
# nothing: every answer must be 200); its output, then the verdict of mix.py.
mix_wrk() {
  local t=$1 secs=$2 plain=0 out
  shift 2
  [ "$t" = portcullis ] || plain=1
  out=$(MIX_FILE=$MIX/requests.tsv MIX_CURSOR=$MIX/cursor-$t MIX_PLAIN=$plain \
    timeout $((secs + 30)) taskset -c 1 wrk -t1 -c"$CONNS" -d"${secs}s" -s "$ROOT/benches/load/mixed.lua" \
    "$@" "http://127.0.0.1:${PORT[$t]}/")
  echo "$out"
  python3 "$ROOT/benches/load/mix.py" verdict "$CONNS" <<<"$out" || {
    echo "$out" >&2
    die "$t: unexpected statuses, or a deny share off the expected one, under load"
  }
}
