package platform

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is the browser the dashboard is tested in.
const chromiumPath = "/usr/bin/chromium"

// TestDashboardFiles: the page and its files are served without a key,
// with a policy that keeps them to their own origin; other paths stay
// JSON 404s.
func TestDashboardFiles(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html", `src="dashboard/app.js"`},
		{"/dashboard", "text/html", "<title>gridlink dashboard</title>"},
		{"/dashboard/app.js", "text/javascript", "EventSource"},
		{"/dashboard/style.css", "text/css", "--ok"},
	} {
		res, err := http.Get(e.ts.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), c.ctype) || !strings.Contains(string(b), c.contains) {
			t.Errorf("GET %s: %d %s, body has %q: %v", c.path, res.StatusCode, res.Header.Get("Content-Type"), c.contains, strings.Contains(string(b), c.contains))
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
		if res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: Referrer-Policy %q", c.path, res.Header.Get("Referrer-Policy"))
		}
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("GET %s: refers to another origin", c.path)
		}
	}
	for _, p := range []string{"/dashboard/nope.js", "/dashboard/index.txt", "/dashboard/", "/index.html", "/nothing"} {
		res, err := http.Get(e.ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %s %s, want a JSON 404", p, res.StatusCode, res.Header.Get("Content-Type"), b)
		}
	}
}

// newBrowser starts headless Chromium for a test, or skips the test when
// it is not installed outside CI.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed in CI: %v", chromiumPath, err)
		}
		t.Skipf("%s is not installed (apt-get install chromium): the dashboard is not tested in a browser", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx
}

// do runs browser actions, bounded so that a page that never shows what
// is awaited fails the test with the step's name instead of hanging it.
func do(t *testing.T, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true in the page.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond))
}

// TestDashboardInBrowser loads the dashboard in headless Chromium with a
// key in the address, and checks through the DOM that it lists the site
// and the newest value of an asset, follows a new reading live (SSE),
// says there is no ITC run yet and then shows one that is posted; then
// that without a key it asks for one and works with the one typed in.
func TestDashboardInBrowser(t *testing.T) {
	f := newFixture(t)
	ctx := newBrowser(t)
	now := time.Now().UnixMilli()
	f.must(http.StatusOK, "POST", "/api/v1/readings", f.ingest, []any{
		reading("house-01/meter", "active_power", now-2000, 1500),
		reading("house-01/meter", "voltage", now-2000, 230.4),
	})

	site := `document.querySelector('section[data-site="bristol"]')`
	value := site + `?.querySelector('tr[data-asset="house-01/meter"] span[data-series="active_power/total"]')?.textContent ?? ""`
	do(t, ctx, "load the page with ?key=",
		chromedp.Navigate(f.ts.URL+"/?key="+f.read),
		chromedp.WaitVisible(chromedp.CSS(`section[data-site="bristol"]`)),
		waitJS(value+`.includes("1500")`))
	if text := eval[string](t, ctx, value); text != "active_power = 1500 W" {
		t.Errorf("meter's power shows %q, want %q", text, "active_power = 1500 W")
	}
	search := eval[string](t, ctx, `location.search`)
	stored := eval[string](t, ctx, `sessionStorage.getItem("gridlink.key") ?? ""`)
	if search != "" || stored != f.read {
		t.Errorf("after loading, the address keeps %q and the session holds the key: %v", search, stored == f.read)
	}
	health := func(asset string) string {
		return site + `.querySelector('tr[data-asset="` + asset + `"] .health-cell')`
	}
	do(t, ctx, "the meter is healthy", waitJS(health("house-01/meter")+`.dataset.health === "ok"`))
	if n := eval[int](t, ctx, `document.querySelectorAll("section[data-site]").length`); n != 1 {
		t.Errorf("%d sites shown to a site's read key, want 1", n)
	}
	if h := eval[string](t, ctx, health("house-01/meter")+`.textContent`); !strings.HasPrefix(h, "ok") {
		t.Errorf("meter's health %q", h)
	}
	// An asset without a value is silent.
	do(t, ctx, "the door sensor is silent", waitJS(health("house-01/door")+`.dataset.health === "silent"`))

	// Live: a reading stored now appears without reloading.
	do(t, ctx, "the live feed is connected", waitJS(site+`.dataset.live === "open"`))
	f.must(http.StatusOK, "POST", "/api/v1/readings", f.ingest, []any{reading("house-01/meter", "active_power", now, 1750.5)})
	do(t, ctx, "the new value arrives live", waitJS(value+`.includes("1750.5")`))
	if text := eval[string](t, ctx, value); text != "active_power = 1750.5 W" {
		t.Errorf("after the live reading the meter shows %q", text)
	}

	// ITC: none yet, then the run posted.
	do(t, ctx, "no run yet", waitJS(`document.getElementById("itc-summary").textContent === "No integration test run yet."`))
	f.must(http.StatusCreated, "POST", "/api/v1/itc/runs", f.admin, itcRunJSON("browser-run", time.Now().UTC()))
	do(t, ctx, "the run's results",
		chromedp.Click(chromedp.CSS("#itc-refresh")),
		chromedp.WaitVisible(chromedp.CSS(`#itc-results tr[data-case="ITC1.02"]`)))
	rows := eval[int](t, ctx, `document.querySelectorAll("#itc-results tbody tr").length`)
	status := eval[string](t, ctx, `document.querySelector('#itc-results tr[data-case="ITC1.02"] .status').textContent`)
	reason := eval[string](t, ctx, `document.querySelector('#itc-results tr[data-case="ITC1.02"] td.reason').textContent`)
	if rows != 4 || status != "failed" || !strings.Contains(reason, "device 1500 W, platform 150 W") {
		t.Errorf("results table: %d rows, ITC1.02 %q %q", rows, status, reason)
	}
	if sum := eval[string](t, ctx, `document.getElementById("itc-summary").textContent`); !strings.Contains(sum, "browser-run") ||
		!strings.Contains(sum, "1 passed, 1 failed, 1 suspended, 1 not run") {
		t.Errorf("run summary %q", sum)
	}

	// Without a key the page asks for one; a wrong one is refused, a
	// right one (an admin's: every site) shows the sites.
	eval[any](t, ctx, `sessionStorage.clear()`)
	do(t, ctx, "no key: the form, a wrong key",
		chromedp.Navigate(f.ts.URL+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS(`#key-form`)),
		chromedp.SendKeys(chromedp.CSS(`#key-input`), "glk_wrong"),
		chromedp.Click(chromedp.CSS(`#key-form button[type="submit"]`)),
		waitJS(`document.getElementById("key-error").textContent !== ""`))
	if e := eval[string](t, ctx, `document.getElementById("key-error").textContent`); !strings.Contains(e, "refused the key") {
		t.Errorf("wrong key: %q", e)
	}
	do(t, ctx, "an admin key",
		chromedp.SendKeys(chromedp.CSS(`#key-input`), f.admin),
		chromedp.Click(chromedp.CSS(`#key-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`section[data-site="athens"]`)))
	if n := eval[int](t, ctx, `document.querySelectorAll("section[data-site]").length`); n != 2 {
		t.Errorf("sites shown to an admin: %d, want 2", n)
	}
}
