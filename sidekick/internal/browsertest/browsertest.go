// Package browsertest drives headless Chromium (through chromedp) for the
// console's browser tests: the console's own, against fakes of triage and
// rotation, and the end-to-end ones against the whole stack.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Find returns a Chromium or Chrome binary: SIDEKICK_CHROMIUM, or the
// first on PATH; "" when there is none. A SIDEKICK_CHROMIUM that is not an
// executable fails the test: it was asked for explicitly.
func Find(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SIDEKICK_CHROMIUM"); p != "" {
		abs, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("SIDEKICK_CHROMIUM=%s: %v", p, err)
		}
		return abs
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is one headless Chromium tab driven for one test; For hands it
// to a subtest.
type Browser struct {
	t testing.TB
	// Ctx is the tab's chromedp context.
	Ctx context.Context
}

// Start starts headless Chromium for the test, or skips it under -short or
// when there is none. bound is how long the browser may live: a bound on a
// browser that is stuck, not a timing assertion. extra are further
// Chromium options, such as a certificate to trust.
func Start(t *testing.T, bound time.Duration, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a headless browser")
	}
	path := Find(t)
	if path == "" {
		t.Skip("no Chromium found: run scripts/ensure-chromium.sh (installs Debian's chromium as root) or set SIDEKICK_CHROMIUM to a Chrome/Chromium binary")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		// This machine's network is closed: keep Chromium from reaching out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(ctx, bound)
	t.Cleanup(cancel)
	return &Browser{t: t, Ctx: ctx}
}

// For is the same tab reporting to t (a subtest).
func (b *Browser) For(t testing.TB) *Browser { return &Browser{t: t, Ctx: b.Ctx} }

// Step runs actions, failing the test with what if one fails.
func (b *Browser) Step(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// Read runs an action that reads the page.
func (b *Browser) Read(what string, a chromedp.Action[string]) string {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, a)
	if err != nil {
		b.t.Fatalf("browser: read %s: %v", what, err)
	}
	return v
}

// Eval evaluates a JavaScript expression in the page and returns its
// value as a T (as chromedp.Evaluate decodes it). DevTools evaluation is
// not page script: the console's content security policy, which refuses
// eval, does not stop it.
func Eval[T any](b *Browser, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", what, err)
	}
	return v
}

// Until waits for a JavaScript expression to be true in the page, asking
// again every tenth of a second until the browser's bound. chromedp.Poll
// would run the expression as page script, which the console's content
// security policy refuses.
func (b *Browser) Until(what, expr string) {
	b.t.Helper()
	for {
		ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		if err == nil && ok {
			return
		}
		select {
		case <-b.Ctx.Done():
			b.t.Fatalf("browser: waiting for %s (%s): %v (last error %v)", what, expr, b.Ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Submit submits the form sel and waits for the page the answer loads,
// which may look like the page it replaces (a flash after a flash).
func (b *Browser) Submit(what, sel string) {
	b.t.Helper()
	Eval[int](b, "mark the page before "+what, `window.browsertestLeft = 1`)
	b.Step(what, chromedp.Submit(chromedp.CSS(sel)))
	b.Until(what+": the next page", `window.browsertestLeft === undefined && document.readyState === "complete"`)
}
