# Shared by `run` and `instructions` (sourced): paths, ports, tools, the work dir, the issuer's
# keys and tokens, the policy (a chain of 12 documents) and the nginx, HAProxy and Portcullis
# configs, and small helpers. Creates nothing outside the work dir; everything it starts is
# stopped on exit.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PCL=${PCL:-$TARGET_DIR/release/portcullis}
PLAIN=${PLAIN:-$TARGET_DIR/release/examples/plain_pingora}

P_UP=18081 P_NGINX=18082 P_HAPROXY=18083 P_PINGORA=18084 P_PCL=18085 P_ADMIN=18095
ISS=https://bench.portcullis.invalid
AUD=portcullis-bench

die() { echo "FAIL: $*" >&2; exit 1; }
for t in nginx haproxy wrk openssl python3 curl taskset; do
  command -v "$t" >/dev/null || die "missing tool: $t (see the header of $0)"
done
[ -x "$PCL" ] && [ -x "$PLAIN" ] ||
  die "build first: cargo build --release --bin portcullis --example plain_pingora (looked in $TARGET_DIR)"
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (the proxy on CPU 0, the rest on CPU 1)"

WORK=$(mktemp -d /tmp/portcullis-load.XXXXXX)
chmod 755 "$WORK"
PIDS=()
alive() { # any started process still running?
  local p
  for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}
cleanup() { # SIGTERM; SIGKILL what is left after 10 s (plain pingora's graceful shutdown waits)
  local p _
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 20); do alive || break; sleep 0.5; done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
echo "work dir: $WORK"

# --- keys, JWKS and tokens --------------------------------------------------------------------
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
openssl genrsa -out "$WORK/key.pem" 2048 2>/dev/null
openssl rsa -in "$WORK/key.pem" -pubout -out "$WORK/pub.pem" 2>/dev/null
openssl genrsa -out "$WORK/forger.pem" 2048 2>/dev/null
MOD=$(openssl rsa -in "$WORK/key.pem" -noout -modulus | cut -d= -f2)
python3 - "$MOD" >"$WORK/jwks.json" <<'EOF'
import base64, json, sys
n = bytes.fromhex(sys.argv[1])
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
print(json.dumps({"keys": [{"kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256",
                            "n": b(n), "e": b((65537).to_bytes(3, "big"))}]}))
EOF
# mint SUBJECT [KEY]: an RS256 token from the bench issuer, valid for two hours.
mint() {
  local now head body sig
  now=$(date +%s)
  head=$(printf '{"alg":"RS256","typ":"JWT","kid":"bench"}' | b64url)
  body=$(printf '{"iss":"%s","aud":"%s","sub":"%s","iat":%d,"exp":%d}' \
    "$ISS" "$AUD" "$1" "$now" $((now + 7200)) | b64url)
  sig=$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -sign "${2:-$WORK/key.pem}" | b64url)
  printf '%s.%s.%s' "$head" "$body" "$sig"
}
EDITOR=$(mint bench-editor)
TRANSLATOR=$(mint bench-translator)
FORGED=$(mint bench-editor "$WORK/forger.pem")

# --- the policy: a chain of 12 documents under the root -----------------------------------------
node_key() { printf '00000000-0000-0000-0000-%012d' "$1"; }
{
  printf '[[users]]\nkey = "00000000-0000-0000-00bb-000000000001"\nexternal_id = "bench-editor"\n'
  printf 'name = "Bench Editor"\nemail = "editor@bench.invalid"\ngroups = ["editor"]\n\n'
  printf '[[users]]\nkey = "00000000-0000-0000-00bb-000000000002"\nexternal_id = "bench-translator"\n'
  printf 'name = "Bench Translator"\nemail = "translator@bench.invalid"\ngroups = ["translator"]\n\n'
  for i in $(seq 1 12); do
    printf '[[nodes]]\nkey = "%s"\nid = %d\nkind = "document"\n' "$(node_key $((1000 + i)))" $((1000 + i))
    [ "$i" -gt 1 ] && printf 'parent = "%s"\n' "$(node_key $((999 + i)))"
    printf '\n'
  done
} >"$WORK/policy.toml"
DOC=/umbraco/management/api/v1/document/$(node_key 1012)
OUTSIDE=/not-umbraco/anything

# --- configs ---------------------------------------------------------------------------------------
NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user root root;"
nginx_conf() { # NAME PORT BODY
  mkdir -p "$WORK/$1"
  cat >"$WORK/$1/nginx.conf" <<EOF
$NGINX_USER
worker_processes 1;
daemon off;
pid $WORK/$1/nginx.pid;
error_log $WORK/$1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/$1; proxy_temp_path $WORK/$1;
  fastcgi_temp_path $WORK/$1; uwsgi_temp_path $WORK/$1; scgi_temp_path $WORK/$1;
  $3
  server { listen 127.0.0.1:$2 reuseport; $4 }
}
EOF
}
nginx_conf upstream $P_UP "" "
    location = /jwks.json { default_type application/json; alias $WORK/jwks.json; }
    location / { default_type application/json; return 200 '{\"id\":\"$(node_key 1012)\",\"name\":\"Bench\",\"documentType\":{\"alias\":\"page\"}}'; }"
nginx_conf nginx $P_NGINX "upstream up { server 127.0.0.1:$P_UP; keepalive 64; }" "
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"

cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  log stderr format short local0 err
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend bench
  bind 127.0.0.1:$P_HAPROXY
  http-request deny status 403 unless { path_beg /umbraco/management/api/v1/document/ }
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny status 401 unless { var(txn.alg) -m str RS256 }
  http-request deny status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$WORK/pub.pem") -m int 1 }
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('\$.iss')
  http-request deny status 401 unless { var(txn.iss) -m str $ISS }
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('\$.aud')
  http-request deny status 401 unless { var(txn.aud) -m str $AUD }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  default_backend up
backend up
  server up 127.0.0.1:$P_UP
EOF

mkdir -p "$WORK/spool"
cat >"$WORK/portcullis.toml" <<EOF
mode = "enforce"
[listen]
address = "127.0.0.1:$P_PCL"
threads = 1
[admin]
address = "127.0.0.1:$P_ADMIN"
[[admin.tokens]]
name = "bench"
env = "PORTCULLIS_ADMIN_TOKEN"
[upstream]
management = "127.0.0.1:$P_UP"
delivery_api_key_env = "BENCH_UMBRACO_DELIVERY_KEY"
[lifecycle]
drain_delay = "0s"
grace_period = "1s"
watch = false
[authn]
pepper_env = "PORTCULLIS_KEY_PEPPER"
key_env = "bench"
[[authn.issuers]]
name = "bench"
issuer = "$ISS"
jwks_url = "http://127.0.0.1:$P_UP/jwks.json"
audiences = ["$AUD"]
algorithms = ["RS256"]
[store]
kind = "file"
policy_file = "policy.toml"
[audit]
sample_allow = 1.0
[audit.spool]
dir = "$WORK/spool"
[[audit.sinks]]
kind = "file"
path = "$WORK/audit.jsonl"
EOF


# start CPU NAME CMD...: runs CMD pinned to CPU, output in $WORK/NAME.out; remembers the pid.
declare -A PID
start() {
  local cpu=$1 name=$2
  shift 2
  taskset -c "$cpu" "$@" >"$WORK/$name.out" 2>&1 &
  PID[$name]=$!
  PIDS+=($!)
}
PEPPER=bench-pepper-0123456789abcdef0123456789abcdef
# PCL_LOG: Portcullis's log filter (default `warn,access=off`; the gateway's own default is
# `info`, which also makes a tracing span a request).
start_portcullis() { # CPU [WRAPPER...]: Portcullis with the bench config, access log off
  local cpu=$1
  shift
  PORTCULLIS_KEY_PEPPER=$PEPPER BENCH_UMBRACO_DELIVERY_KEY=umbraco-delivery-key-of-the-bench \
    PORTCULLIS_ADMIN_TOKEN=bench-admin-token-at-least-32-bytes-long PORTCULLIS_LOG="${PCL_LOG:-warn,access=off}" \
    start "$cpu" portcullis "$@" "$PCL" serve --config "$WORK/portcullis.toml"
}
status() { # URL [TOKEN] -> the status code
  local auth=()
  [ -n "${2:-}" ] && auth=(-H "Authorization: Bearer $2")
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${auth[@]}" "$1" || true
}
wait_for() { # SECONDS URL [TOKEN]: until URL answers 200
  local i
  for i in $(seq 1 $(($1 * 2))); do
    [ "$(status "$2" "${3:-}")" = 200 ] && return 0
    sleep 0.5
  done
  tail -n 20 "$WORK"/*.out >&2
  die "$2 not ready after $1 s"
}
expect() { # NAME WANT URL [TOKEN [HEADER]]: the status of URL with TOKEN as HEADER's value
  local got auth=()   # (default: Authorization: Bearer TOKEN)
  if [ -n "${5:-}" ]; then auth=(-H "$5: $4"); elif [ -n "${4:-}" ]; then auth=(-H "Authorization: Bearer $4"); fi
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${auth[@]}" "$3" || true)
  [ "$got" = "$2" ] || die "$1: expected $2, got $got"
  echo "check ok: $1 -> $2"
}
