#!/usr/bin/env bash
# Captures the az --debug outputs in this folder from a live `certagent emulator` (demo
# tenant), for the parser tests in azcli_test.go. Run from the module root:
#   internal/azcli/testdata/capture.sh
# Needs azure-cli (apt-get install -y azure-cli), jq and openssl. Nothing leaves loopback:
# every proxy variable points at a closed port.
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $emu_pid 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/certagent" ./cmd/certagent
port=18743
"$work/certagent" emulator --listen 127.0.0.1:$port --dir "$work/emu" >"$work/emu.log" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do [ -f "$work/emu/demo.json" ] && break; sleep 0.1; done
sleep 0.5
url=https://127.0.0.1:$port
cat >"$work/cloud.json" <<JSON
{"endpoints":{"activeDirectory":"$url/adfs","activeDirectoryResourceId":"https://management.core.windows.net/","activeDirectoryGraphResourceId":"https://graph.windows.net/","microsoftGraphResourceId":"$url/","resourceManager":"$url"}}
JSON
export AZURE_CONFIG_DIR=$work/az AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_NO_COLOR=true \
  REQUESTS_CA_BUNDLE=$work/emu/ca.pem HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 \
  NO_PROXY=127.0.0.1,localhost
tenant=$(jq -r .tenantId "$work/emu/demo.json")
agent=$(jq -r .agentAppId "$work/emu/demo.json")
target=$(jq -r .targetAppId "$work/emu/demo.json")
az cloud register -n capture --cloud-config "@$work/cloud.json" >/dev/null
az cloud set -n capture >/dev/null
az login --service-principal -u "$agent" -p "$work/emu/demo-agent.pem" --tenant "$tenant" --allow-no-subscriptions -o none
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/new.key" -out "$work/new.pem" -subj /CN=capture -days 300 2>/dev/null
az ad app credential reset --id "$target" --cert "@$work/new.pem" --append --debug >/dev/null 2>"$out/reset-append.debug.txt"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/stranger.key" -out "$work/stranger.pem" -subj /CN=stranger -days 30 2>/dev/null
cat "$work/stranger.pem" "$work/stranger.key" >"$work/stranger-both.pem"
if az login --service-principal -u "$agent" -p "$work/stranger-both.pem" --tenant "$tenant" --allow-no-subscriptions --debug >/dev/null 2>"$out/login-700027.debug.txt"; then
  echo "az login with an unregistered certificate succeeded" >&2; exit 1
fi
az login --service-principal -u "$agent" -p "$work/stranger-both.pem" --tenant "$tenant" --allow-no-subscriptions >/dev/null 2>"$out/login-700027.txt" || true
# The fixtures must not name the temporary folder.
sed -i "s#$work#/tmp/capture#g" "$out"/*.txt
echo "wrote $out/reset-append.debug.txt, login-700027.debug.txt, login-700027.txt"
