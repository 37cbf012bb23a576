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
// Screenshots (job list, job pages, the cancel dialog, the New job form's
// plan, a rollout awaiting approval and halted) and, for a failed
// test, the logs of every process it started and the page it was on are
// written to e2e/artifacts/<Test>/ (git-ignored, emptied at each run).
//
// The tests and what they take on the project machine (2 shared cores):
//
//	TestDexSignInReturnsToBookmarkAndSignOutRevokes          ~2.5 s
//	TestDemoSignInReturnsToBookmarkAndSignOutRevokes         ~1.5 s
//	TestDexGroupsMapToRoles (no browser)                     ~0.6 s
//	TestLiveProgressAdvancesWithoutReloadAndPollingStops     ~18 s: two 5 s polls
//	                                                         plus one quiet interval
//	TestOperatorCancelsScheduledJobThroughDialog             ~5 s (two cancels)
//	TestRunningJobExplainsWhyItCannotBeCancelled             ~2.5 s
//	TestViewerSeesNoCancelControl                            ~2.5 s
//	TestAuthorCreatesJobFromCopyAndLandsOnRunningJob         ~15 s: the source
//	                                                         job runs ~4 s first
//	TestApproverApprovesWaveAndOperatorHaltsRollout          ~29 s: three waves,
//	                                                         an 8 s bake paid twice
//	BenchmarkSignInRoundTripDex (go test -bench, no browser) ~85 ms/op
//
// The first test also pays for building hubjobs (3–15 s, more when cold).
//
// Design notes: every process runs in its own process group and is stopped
// with SIGTERM, then SIGKILL, when its test ends (and with the test binary,
// through Pdeathsig). Ports that must be known before a process starts (Dex's
// issuer, the portal's public_url) are picked below the kernel's ephemeral
// range. One chromium serves all tests; each test gets its own browser
// context (own cookies and storage). Pages are read with one JavaScript
// evaluation per question, because htmx replaces nodes while tests read them.
//
// The package has no non-test code besides this comment; everything lives in
// _test.go files so that nothing here is ever linked into the product.
package e2e
