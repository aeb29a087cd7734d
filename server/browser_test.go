package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Small videos keep these tests fast on two cores; playback itself runs in
// real time (frames/fps seconds).
const (
	pageSide   = 320
	pageFrames = 90
	pageFPS    = 30
)

// screenshot, if set, is where TestBrowserPlaysWhileRendering saves the
// whole page mid-playback (scripts/screenshot.sh makes docs/page.png so).
var screenshot = flag.String("screenshot", "", "save a mid-playback screenshot of the page to this PNG file")

// browser starts Debian's Chromium headless with a fresh profile, in real
// time (a virtual-time budget reports videos that never really played). It
// skips when Chromium is missing unless WHIRL_REQUIRE_CHROMIUM is set, as
// scripts/test.sh does.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("WHIRL_REQUIRE_CHROMIUM") != "" {
			t.Fatalf("WHIRL_REQUIRE_CHROMIUM is set but chromium is missing: %v", err)
		}
		t.Skip("chromium not installed (apt-get install -y chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, no first run, no background networking, no sync
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // tests may run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1200, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	return ctx
}

// pageURL opens the page with the choices in its address.
func pageURL(p *process, seed int) string {
	q := url.Values{}
	q.Set("seed", fmt.Sprint(seed))
	q.Set("size", fmt.Sprint(pageSide))
	q.Set("frames", fmt.Sprint(pageFrames))
	q.Set("fps", fmt.Sprint(pageFPS))
	q.Set("style", fmt.Sprint(int(whirlv1.Style_STYLE_WHEELS)))
	return "http://" + p.httpAddr + "/?" + q.Encode()
}

// waitFor polls a JavaScript condition in real time until it holds.
func waitFor(cond string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(20*time.Millisecond))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := poll(ctx, t)
		return chromedp.Void{}, err
	}
}

// marks are the page's performance marks (ms since navigation; the first of
// each name), as the page leaves them for timing.
type marks map[string]float64

const marksJS = `Object.fromEntries(performance.getEntriesByType("mark").filter(m => m.name.startsWith("whirl:")).reverse().map(m => [m.name.slice(6), m.startTime]))`

// playedTab is what one tab reports once its video has played to the end.
type playedTab struct {
	Marks   marks  `json:"marks"`
	Frames  int64  `json:"frames"`
	Ended   bool   `json:"ended"`
	Status  string `json:"status"`
	Error   string `json:"error"`
	RetryMs string `json:"retryMs"`
	FileB64 string `json:"file"`
	File    []byte `json:"-"`
}

// playedJS reads a finished tab, the download link's bytes included, exactly
// as a user would save them.
const playedJS = `(async () => {
	const $ = (id) => document.getElementById(id);
	const a = $("download");
	let file = "";
	if (!a.hidden) {
		const b = new Uint8Array(await (await fetch(a.href)).arrayBuffer());
		let s = ""; for (const x of b) s += String.fromCharCode(x);
		file = btoa(s);
	}
	return {marks: ` + marksJS + `, frames: $("video").getVideoPlaybackQuality().totalVideoFrames,
		ended: $("video").ended, status: $("status").textContent, error: $("error").hidden ? "" : $("error").textContent,
		retryMs: $("status").dataset.retryMs ?? "", file};
})()`

// waitPlayed waits in real time until the page has verified the file and
// the video ended (or an error shows), then reads what it did.
func waitPlayed(ctx context.Context, t *testing.T) playedTab {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`(performance.getEntriesByName("whirl:ended").length > 0 &&
		performance.getEntriesByName("whirl:verified").length > 0) || !document.getElementById("error").hidden`,
		chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[playedTab](playedJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if out.Error != "" {
		t.Fatalf("page shows an error: %s (status %q)", out.Error, out.Status)
	}
	if out.File, err = base64.StdEncoding.DecodeString(out.FileB64); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPlayed asserts what every finished tab must show.
func checkPlayed(t *testing.T, name string, tab playedTab) {
	t.Helper()
	for _, m := range []string{"animate", "lease", "header", "first-fragment", "playing", "trailer", "verified", "ended"} {
		if _, ok := tab.Marks[m]; !ok {
			t.Errorf("%s: no %q mark; marks %v", name, m, tab.Marks)
		}
	}
	if !tab.Ended {
		t.Errorf("%s: video not ended", name)
	}
	if tab.Frames < pageFrames-2 {
		t.Errorf("%s: %d frames decoded, want >= %d", name, tab.Frames, pageFrames-2)
	}
	if !strings.Contains(tab.Status, "verified") {
		t.Errorf("%s: status %q does not say verified", name, tab.Status)
	}
	if len(tab.File) == 0 {
		t.Errorf("%s: no download link", name)
	}
}

// TestBrowserPlaysWhileRendering replays what the page is for: one
// animation, started from the keyboard, plays after its first fragment
// while the server is still rendering, to the last frame, and verifies.
func TestBrowserPlaysWhileRendering(t *testing.T) {
	ctx := browser(t)
	p := startServer(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(pageURL(p, 7)),
		chromedp.WaitVisible(chromedp.CSS(`#facts dd`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	facts, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("facts")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(facts, "Symmetry") {
		t.Errorf("facts %q lack the symmetry", facts)
	}
	err = chromedp.Do(ctx,
		waitFor(`document.getElementById("still").src.startsWith("blob:")`, 10*time.Second),
		// Keyboard only: Enter in a field submits the choices.
		chromedp.SendKeys(chromedp.ID("seed"), kb.Enter),
	)
	if err != nil {
		t.Fatal(err)
	}

	// Mid-playback: the video shows the pen's colour (#f2c14e).
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const v = document.getElementById("video"); return v.currentTime > 1 && !v.ended; })()`,
		chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID("video")))
	if err != nil {
		t.Fatal(err)
	}
	if *screenshot != "" {
		page, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err == nil {
			err = os.WriteFile(*screenshot, page, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	n := penPixels(t, shot)
	t.Logf("pen pixels %d", n)
	if n < 20 {
		t.Errorf("mid-playback screenshot has %d pen-coloured pixels, want >= 20", n)
	}

	tab := waitPlayed(ctx, t)
	checkPlayed(t, "tab", tab)
	m := tab.Marks
	if !(m["first-fragment"] < m["playing"] && m["playing"] < m["trailer"]) {
		t.Errorf("want first fragment < playing < trailer, got %v", m)
	}
	t.Logf("after Animate: first fragment appended %.0f ms, playing %.0f ms, trailer %.0f ms, ended %.0f ms; %d frames decoded",
		m["first-fragment"]-m["animate"], m["playing"]-m["animate"], m["trailer"]-m["animate"], m["ended"]-m["animate"], tab.Frames)
}

// penPixels counts pixels of the default pen's hue (#f2c14e, a saturated
// yellow); the wheels and the background are greys. Antialiasing and the
// encoder's 4:2:0 chroma darken and wash out a thin line, hence the margins.
func penPixels(t *testing.T, shot []byte) int {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r >= 150 && g >= 110 && r >= bl+80 && g >= bl+50 {
				n++
			}
		}
	}
	return n
}

// TestBrowserSixTabs replays the original's failure: six tabs, six seeds,
// five leases. Every tab plays its own curve to the end; the one left out
// says so and retries; no lease is left behind.
func TestBrowserSixTabs(t *testing.T) {
	ctx := browser(t)
	p := startServer(t, "--capacity", "5", "--admin-token", "ops-token")
	seeds := []int{101, 102, 103, 104, 105, 106}

	tabs := make([]context.Context, len(seeds))
	for i, seed := range seeds {
		tctx, cancel := chromedp.NewContext(ctx)
		t.Cleanup(cancel)
		tabs[i] = tctx
		if err := chromedp.Do(tctx, chromedp.Navigate(pageURL(p, seed)), chromedp.WaitVisible(chromedp.CSS(`#facts dd`))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, tctx := range tabs {
		wg.Go(func() {
			if err := chromedp.Do(tctx, chromedp.Click(chromedp.ID("animate"))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	played := make([]playedTab, len(tabs))
	for i, tctx := range tabs {
		played[i] = waitPlayed(tctx, t)
	}

	// Solo renders on a server of their own: no cache, no other client.
	solo := startServer(t)
	c, err := client.Dial(t.Context(), solo.addr, client.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	refused := 0
	for i, tab := range played {
		name := fmt.Sprintf("seed %d", seeds[i])
		checkPlayed(t, name, tab)
		if _, ok := tab.Marks["refused"]; ok {
			refused++
			if tab.RetryMs == "" {
				t.Errorf("%s: refused without showing the server's retry hint", name)
			}
		}
		var want bytes.Buffer
		_, err := c.Render(t.Context(), &whirlv1.RenderAnimationRequest{
			Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: uint64(seeds[i])}},
			Video:  &whirlv1.VideoOptions{Width: pageSide, Height: pageSide, Frames: pageFrames, Fps: pageFPS, Style: whirlv1.Style_STYLE_WHEELS},
		}, &want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tab.File, want.Bytes()) {
			t.Errorf("%s: the tab's %d bytes differ from a solo render's %d", name, len(tab.File), want.Len())
		}
	}
	if refused == 0 {
		t.Error("no tab was refused a lease: six acquired five leases")
	}

	// Each tab released its lease; ListLeases through the browser protocol.
	_, err = chromedp.Run(tabs[0], chromedp.Poll[string](`(async () => {
		const r = await fetch("/whirl.v1.LeaseAdminService/ListLeases", {method: "POST", body: "{}",
			headers: {"Content-Type": "application/json", "Connect-Protocol-Version": "1", "Authorization": "Bearer ops-token"}});
		const j = await r.json();
		return r.ok && (j.leases ?? []).length === 0 && !j.count ? "empty" : false;
	})()`, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		out, _ := chromedp.Run(tabs[0], chromedp.Evaluate[string](`(async () => {
			const r = await fetch("/whirl.v1.LeaseAdminService/ListLeases", {method: "POST", body: "{}",
				headers: {"Content-Type": "application/json", "Connect-Protocol-Version": "1", "Authorization": "Bearer ops-token"}});
			return r.status + " " + await r.text();
		})()`, chromedp.EvalAwaitPromise))
		t.Fatalf("leases left after every tab finished: %v; ListLeases: %s", err, out)
	}
}

// TestBrowserRefusalRetryInfo: when every slot is taken, the refusal that
// reaches the page through the Connect protocol carries google.rpc.RetryInfo,
// which the generated TypeScript reads and the page shows and obeys.
func TestBrowserRefusalRetryInfo(t *testing.T) {
	ctx := browser(t)
	p := startServer(t, "--capacity", "1", "--lease-ttl", "3s")
	c, err := client.Dial(t.Context(), p.addr, client.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held, err := c.Acquire(t.Context(), client.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(pageURL(p, 9)),
		chromedp.WaitVisible(chromedp.CSS(`#facts dd`)),
		chromedp.Click(chromedp.ID("animate")),
	)
	if err != nil {
		t.Fatal(err)
	}
	retryMs, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById("status").dataset.retryMs ?? false`, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	if err != nil {
		t.Fatal(err)
	}
	var ms int
	if _, err := fmt.Sscan(retryMs, &ms); err != nil || ms <= 0 || ms > 3000 {
		t.Fatalf("retry hint %q ms, want the time until the held lease expires (0-3000)", retryMs)
	}
	if want := fmt.Sprintf("retry in %.1f s", float64(ms)/1000); !strings.Contains(status, want) {
		t.Errorf("status %q does not say %q", status, want)
	}
	// Once the slot frees, the page's own retry gets it and plays.
	if err := c.Release(t.Context(), held.ID); err != nil {
		t.Fatal(err)
	}
	checkPlayed(t, "tab", waitPlayed(ctx, t))
}
