package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds the browser (HUBJOBS_CHROMIUM, else Debian's
// /usr/bin/chromium) or stops the test.
func chromiumPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("HUBJOBS_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		requireInfra(t, "chromium not found at %s: %v", path, err)
	}
	return path
}

// browser is one test's isolated browser context (a fresh "profile") in the
// shared headless chromium, driven through chromedp; it lives as long as the
// test.
type browser struct {
	t   testing.TB
	ctx context.Context // the chromedp context of the test's tab; never given a timeout itself

	mu       sync.Mutex
	requests []string // URLs the page requested, in order (network events)
}

// stepTimeout bounds one browser step; a flow that works takes well under a
// second per step, so this only decides how long a broken one hangs.
const stepTimeout = 15 * time.Second

// sharedChromium is one chromium process for the whole test binary; each
// test gets its own browser context in it (see newBrowser). Starting chromium
// costs 1–3 s on the project machine, a browser context a few milliseconds.
var sharedChromium struct {
	once   sync.Once
	ctx    context.Context // the chromedp context of the browser's first tab
	cancel context.CancelFunc
	err    error
}

// startChromium starts the shared browser with the flags from
// docs/testing.md (root-safe, no GPU, no background traffic to Google) and a
// fresh profile in the test binary's temporary directory.
func startChromium(path string) (context.Context, error) {
	sharedChromium.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.UserDataDir(filepath.Join(workDir, "chromium-profile")),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.Headless,
			chromedp.WindowSize(1280, 900),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-dev-shm-usage", true),
		)
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(allocCtx)
		sharedChromium.ctx = ctx
		sharedChromium.cancel = func() { cancelCtx(); cancelAlloc() }
		// Start it now, without a timeout: a timeout on the first call
		// would bound the whole browser's life.
		if err := chromedp.Do(ctx); err != nil {
			sharedChromium.err = fmt.Errorf("start chromium %s: %w", path, err)
		}
	})
	return sharedChromium.ctx, sharedChromium.err
}

// stopChromium ends the shared browser (TestMain, after every test).
func stopChromium() {
	if sharedChromium.cancel != nil {
		sharedChromium.cancel()
	}
}

// newBrowser gives the test a fresh browser context in the shared chromium:
// its own cookies, storage and cache, like a new profile, so that tests are
// independent. When the test fails, the page is saved as failure.png and
// failure.html before the context closes.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	root, err := startChromium(chromiumPath(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser context: %v", err)
	}
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot("failure")
			if html, err := try(b, chromedp.OuterHTML(chromedp.CSS("html"))); err == nil {
				_ = os.WriteFile(artifactPath(t, "failure.html"), []byte(html), 0o644)
			}
		}
	})
	return b
}

// record keeps the URL of every request the page sends (runs on chromedp's
// reader goroutine: must be quick and must not call the browser).
func (b *browser) record(ev any) {
	if e, ok := ev.(*network.EventRequestWillBeSent); ok {
		b.mu.Lock()
		b.requests = append(b.requests, e.Request.URL)
		b.mu.Unlock()
	}
}

// countRequests counts requested URLs containing substr.
func (b *browser) countRequests(substr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, u := range b.requests {
		if strings.Contains(u, substr) {
			n++
		}
	}
	return n
}

// try runs one action with the step timeout.
func try[T any](b *browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// do runs steps in order, failing the test at the first error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if _, err := try(b, chromedp.Steps(steps...)); err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.locationOrErr())
	}
}

// run runs one action that returns a value, failing the test on error.
func run[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := try(b, a)
	if err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.locationOrErr())
	}
	return v
}

func (b *browser) locationOrErr() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown: " + err.Error()
	}
	return loc
}

// navigate opens url and waits for the load event.
func (b *browser) navigate(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url))
}

func (b *browser) location() string {
	b.t.Helper()
	return run(b, "read location", chromedp.Location())
}

// The page is read with one JavaScript evaluation per question rather than
// chromedp's node queries: htmx swaps elements while a test reads them (the
// live status is replaced every 5 s), and a DOM node id fetched in one
// protocol call can be gone by the next ("No node with given id found").
// An evaluation sees one consistent page.

// text is the visible text of the first element matching the CSS selector,
// waiting until there is one.
func (b *browser) text(sel string) string {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? {text: e.innerText} : null })()`, strconv.Quote(sel))
	v := run(b, "read "+sel, chromedp.Poll[struct{ Text string }](js, chromedp.WithPollingInterval(25*time.Millisecond)))
	return strings.TrimSpace(v.Text)
}

// attr is an attribute of the first element matching sel, waiting until
// there is such an element; ok is false when it lacks the attribute.
func (b *browser) attr(sel, name string) (value string, ok bool) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? {value: e.getAttribute(%s)} : null })()`,
		strconv.Quote(sel), strconv.Quote(name))
	v := run(b, "read "+sel+"["+name+"]", chromedp.Poll[struct{ Value *string }](js, chromedp.WithPollingInterval(25*time.Millisecond)))
	if v.Value == nil {
		return "", false
	}
	return *v.Value, true
}

// exists reports, without waiting, whether sel matches an element.
func (b *browser) exists(sel string) bool {
	b.t.Helper()
	return run(b, "look for "+sel, chromedp.Evaluate[bool](fmt.Sprintf("document.querySelector(%s) !== null", strconv.Quote(sel))))
}

// waitLocation waits until the page's URL is exactly want.
func (b *browser) waitLocation(want string) {
	b.t.Helper()
	b.waitURL("the page to be at exactly "+want, func(loc string) bool { return loc == want })
}

// waitURL waits until the page's URL satisfies ok and that page has
// loaded. It polls from Go rather than in the page, because the page
// navigates meanwhile (the URL changes when a navigation commits, before the
// new document is ready).
func (b *browser) waitURL(what string, ok func(string) bool) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		loc := b.location()
		if ok(loc) {
			b.waitFor("the page at "+loc+" to load", `document.readyState === "complete"`, stepTimeout)
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s: page is at %s", what, loc)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitFor polls the page until the JS predicate is true.
func (b *browser) waitFor(what, predicate string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		b.t.Fatalf("waiting for %s (%s): %v (page: %s)", what, predicate, err, b.locationOrErr())
	}
}

// screenshot saves the whole page as e2e/artifacts/<Test>/<name>.png. Right
// after a navigation chromium can report a page of zero width for a moment,
// so a failed capture is retried briefly; a screenshot is evidence, not a
// check, so it never fails the test.
func (b *browser) screenshot(name string) {
	var png []byte
	var err error
	for range 20 {
		if png, err = try(b, chromedp.FullScreenshot(100)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(artifactPath(b.t, name+".png"), png, 0o644); err != nil {
		b.t.Logf("save screenshot %s: %v", name, err)
	}
}

// cookie returns the browser's cookie called name for url, or nil.
func (b *browser) cookie(url, name string) *network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		b.t.Fatalf("read cookies for %s: %v", url, err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}
