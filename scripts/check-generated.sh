#!/usr/bin/env bash
# check-generated.sh — fail when the committed templ output is stale.
#
# Regenerates with the templ version pinned in go.mod (`go tool templ`) and
# compares a checksum of every *_templ.go before and after: that catches an
# edited .templ whose output was not regenerated AND a new .templ whose output
# was never added, and it is not fooled by someone's uncommitted but
# consistent work in a shared tree. In CI (CI=true, a clean clone) it also
# requires `git diff --exit-code -- '*_templ.go'`, i.e. the output is committed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sums() { find . -name '*_templ.go' -not -path './.cache/*' -not -path './.git/*' -print0 | sort -z | xargs -0r sha256sum; }

before="$(sums)"
go tool templ generate -log-level error
after="$(sums)"
if [ "$before" != "$after" ]; then
	echo "check-generated: templ output is stale; run 'go tool templ generate' and commit the *_templ.go files:" >&2
	diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2 || true
	exit 1
fi
if [ "${CI:-}" = true ] && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git diff --exit-code --stat -- '*_templ.go'
	untracked="$(git ls-files --others --exclude-standard -- '*_templ.go')"
	if [ -n "$untracked" ]; then
		echo "check-generated: generated files not committed: $untracked" >&2
		exit 1
	fi
fi
echo "check-generated: templ output up to date"
