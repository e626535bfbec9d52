#!/usr/bin/env bash
# Static checks of the deployment files that need no Docker and no cluster:
#   - nginx -t of deploy/nginx/nginx.conf (compose) and of the rendered
#     switchboard-local.conf.tmpl, in a temporary prefix (never /etc/nginx)
#   - haproxy -c of deploy/haproxy/haproxy.cfg with loopback servers
#   - bash -n (and shellcheck when installed) of the scripts
#   - YAML parse of docker-compose.yml and deploy/kubernetes/*.yaml (python3 + PyYAML)
# A missing tool is reported and its check skipped; any failed check fails the run.
# Debian: apt-get install -y nginx haproxy shellcheck python3-yaml
set -euo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$DEPLOY/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf -- "$TMP"' EXIT
failed=0 passed=0 skipped=0

ok()   { echo "ok    $*"; passed=$((passed + 1)); }
bad()  { echo "FAIL  $*"; failed=$((failed + 1)); }
skip() { echo "skip  $*"; skipped=$((skipped + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }

check_nginx() { # name conf-file prefix
  if out=$(nginx -t -q -p "$3/" -c "$2" -e "$3/logs/error.log" 2>&1); then ok "$1"; else bad "$1"; echo "$out"; fi
}

if have nginx; then
  # Compose config: the upstream host names exist only on the compose network,
  # and stdout/stderr logs need a container; swap them for loopback and files.
  p=$TMP/nginx-compose
  mkdir -p "$p/conf" "$p/logs"
  cp "$DEPLOY"/nginx/switchboard-*.conf "$p/conf/"
  sed -e 's/switchboard-\([0-9]\):3000/127.0.0.1:300\1/' \
      -e "s#/dev/stderr#$p/logs/error.log#" -e "s#/dev/stdout#$p/logs/access.log#" \
      -e "s#/tmp/nginx.pid#$p/nginx.pid#" \
      "$DEPLOY/nginx/nginx.conf" > "$p/conf/nginx.conf"
  check_nginx "nginx -t deploy/nginx/nginx.conf" "$p/conf/nginx.conf" "$p"

  # Local template, rendered as deploy/local-cluster.sh renders it.
  p=$TMP/nginx-local
  mkdir -p "$p/nginx/tmp" "$p/logs"
  cp "$DEPLOY"/nginx/switchboard-*.conf "$p/nginx/"
  servers=$'        server 127.0.0.1:3001;\n        server 127.0.0.1:3002;\n        server 127.0.0.1:3003;'
  if (( EUID == 0 )); then user_line="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"; else user_line="#"; fi
  t=$(<"$DEPLOY/nginx/switchboard-local.conf.tmpl")
  t=${t//@@USER_LINE@@/$user_line}
  t=${t//@@LISTEN@@/127.0.0.1:8080}
  t=${t//@@UPSTREAM_SERVERS@@/$servers}
  printf '%s\n' "$t" > "$p/nginx/nginx.conf"
  check_nginx "nginx -t deploy/nginx/switchboard-local.conf.tmpl" "$p/nginx/nginx.conf" "$p"
else
  skip "nginx configs (nginx not installed)"
fi

if have haproxy; then
  if out=$(SB_NODE1=127.0.0.1:3001 SB_NODE2=127.0.0.1:3002 SB_NODE3=127.0.0.1:3003 \
           haproxy -c -f "$DEPLOY/haproxy/haproxy.cfg" 2>&1); then
    ok "haproxy -c deploy/haproxy/haproxy.cfg"
  else
    bad "haproxy -c deploy/haproxy/haproxy.cfg"; echo "$out"
  fi
else
  skip "haproxy config (haproxy not installed)"
fi

for s in "$DEPLOY/local-cluster.sh" "$DEPLOY/check-configs.sh"; do
  if bash -n "$s"; then ok "bash -n ${s#"$ROOT"/}"; else bad "bash -n ${s#"$ROOT"/}"; fi
  if have shellcheck; then
    if out=$(shellcheck -e SC2015,SC2004 "$s" 2>&1); then ok "shellcheck ${s#"$ROOT"/}"; else bad "shellcheck ${s#"$ROOT"/}"; echo "$out"; fi
  fi
done
have shellcheck || skip "shellcheck (not installed)"

if have python3 && python3 -c 'import yaml' 2>/dev/null; then
  for f in "$ROOT/docker-compose.yml" "$DEPLOY"/kubernetes/*.yaml; do
    if out=$(python3 - "$f" 2>&1 <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
assert docs, "no document"
for d in docs:
    assert isinstance(d, dict), "top level is not a mapping"
    if "kind" in d and d["kind"] != "Kustomization":
        assert d.get("apiVersion") and d.get("metadata", {}).get("name"), "apiVersion/metadata.name missing"
EOF
    ); then ok "yaml ${f#"$ROOT"/}"; else bad "yaml ${f#"$ROOT"/}"; echo "$out"; fi
  done
else
  skip "YAML parse (python3 with PyYAML not available)"
fi

echo "$passed passed, $failed failed, $skipped skipped"
(( failed == 0 ))
