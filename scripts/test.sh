#!/usr/bin/env bash
# Runs Switchboard's whole test suite on a fresh Debian machine: installs
# what the tests need (redis-server, nginx, the npm interop clients), then
# vet, gofmt, and the Go tests (with the race detector on the packages with
# concurrency). Usage: scripts/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "missing: ${need_apt[*]} (run: sudo apt-get install -y ${need_apt[*]})" >&2
    exit 1
  fi
fi
# Debian starts a redis-server service on install; the tests start their own.

echo "== npm ci (interop clients)"
for d in $(git ls-files '*package-lock.json' | xargs -r -n1 dirname); do
  (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
done

echo "== go vet"
go vet ./...
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi

race_pkgs=(./state/... ./adapter/... ./service/... ./gateway/... ./auth/... ./config/... ./api/... ./internal/...)
echo "== go test -race ${race_pkgs[*]}"
go test -race -count=1 -timeout 15m "$@" "${race_pkgs[@]}"
echo "== go test ./test/... ./cmd/..."
go test -count=1 -timeout 20m "$@" ./test/... ./cmd/...
