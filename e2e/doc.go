// Package e2e holds hubjobs' end-to-end tests: the real binary, a real
// browser (Debian chromium through chromedp), a real OIDC provider (Dex, or
// the demo IdP of `hubjobs demo`) and the IoT Hub simulator, each started as
// its own process on free loopback ports and stopped when the test ends.
//
// Run them with `make e2e` (or as part of `make test`), which installs
// chromium and builds Dex first. By hand:
//
//	scripts/install-deps.sh chromium dex
//	HUBJOBS_DEX_BIN=$PWD/.cache/bin/dex go test -v ./e2e/
//
// Environment:
//
//	HUBJOBS_CHROMIUM  browser binary (default /usr/bin/chromium)
//	HUBJOBS_DEX_BIN   Dex binary (default .cache/bin/dex)
//	CI=true           a missing browser or Dex fails the tests instead of
//	                  skipping them
//
// Screenshots and the logs of every process of a failed test are written to
// e2e/artifacts/ (git-ignored).
//
// The package has no non-test code besides this comment; everything lives in
// _test.go files so that nothing here is ever linked into the product.
package e2e
