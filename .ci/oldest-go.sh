#!/usr/bin/env bash
# oldest-go.sh: proves that go.mod's `go` line is a floor embedders can stand on (issue 17).
# With exactly that Go (the module proxy serves toolchains: GOTOOLCHAIN=goX.Y.Z), it
#   1. runs the library's unit tests (every package but the namespace lab suites), and
#   2. builds the README's embedding example in a fresh module whose go.mod names that version,
#      after `go mod tidy`, which must leave the module's go line alone.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

min=$(awk '$1 == "go" { print $2; exit }' go.mod)
if grep -q '^toolchain ' go.mod; then
	echo "oldest-go: go.mod has a toolchain line: it would force a newer Go on embedders" >&2
	exit 1
fi
export GOTOOLCHAIN=go$min
echo "== oldest Go: $(go version)"
[[ $(go env GOVERSION) == "go$min" ]] || { echo "oldest-go: wanted go$min, got $(go env GOVERSION)" >&2; exit 1; }

pkgs=$(go list ./... | grep -v -e /interop -e /netlab)
out=$(mktemp)
trap 'rm -rf "$out" "${mod-}"' EXIT
if ! go test -count=1 -json $pkgs >"$out"; then
	grep '"Action":"output"' "$out" | sed 's/.*"Output":"\(.*\)"}$/\1/' | grep -E 'FAIL|panic|_test.go' | head -50 >&2 || true
	echo "oldest-go: unit tests failed with go$min" >&2
	exit 1
fi
passed=$(grep -c '"Action":"pass","Package":"[^"]*","Test":' "$out" || true)
skipped=$(grep -c '"Action":"skip","Package":"[^"]*","Test":' "$out" || true)
echo "oldest-go: go$min ran the unit tests of $(wc -w <<<"$pkgs") packages: $passed tests passed, $skipped skipped"

mod=$(mktemp -d)
cat >"$mod/go.mod" <<MOD
module example.com/embed

go $min

require github.com/gototem/gototem v0.0.0

replace github.com/gototem/gototem => $repo
MOD
# The program between the README's embed-example marker and the end of its code block.
awk '/<!-- embed-example/ { on = 1; next } on && /^```go$/ { code = 1; next } code && /^```$/ { exit } code { print }' \
	README.md >"$mod/main.go"
[[ -s $mod/main.go ]] || { echo "oldest-go: no embed-example program found in README.md" >&2; exit 1; }
(cd "$mod" && go mod tidy && go vet . && go build -o /dev/null .)
got=$(awk '$1 == "go" { print $2; exit }' "$mod/go.mod")
if [[ $got != "$min" ]] || grep -q '^toolchain ' "$mod/go.mod"; then
	echo "oldest-go: go mod tidy changed the embedding module's go line to $got (or added a toolchain line)" >&2
	cat "$mod/go.mod" >&2
	exit 1
fi
echo "oldest-go: the README's embedding example builds with go$min; go mod tidy left 'go $min' alone"
