package main_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// sharedTab is what a share link's page reports.
type sharedTab struct {
	Duration    float64 `json:"duration"`
	CurrentTime float64 `json:"currentTime"`
	Ended       bool    `json:"ended"`
	ReadyState  int     `json:"readyState"`
	FormHidden  bool    `json:"formHidden"`
	Facts       string  `json:"facts"`
	Status      string  `json:"status"`
	Back        string  `json:"back"`
	Error       int     `json:"error"`
}

const sharedJS = `(() => {
	const $ = (id) => document.getElementById(id);
	const v = $("shared-video");
	return {duration: v.duration, currentTime: v.currentTime, ended: v.ended, readyState: v.readyState,
		formHidden: document.querySelector("main").hidden, facts: $("shared-facts").textContent,
		status: $("shared-status").textContent, back: $("back").getAttribute("href"), error: v.error ? v.error.code : 0};
})()`

var shareLinkRE = regexp.MustCompile(`^http://[^/]+/v/[0-9a-f]{64}$`)

// TestBrowserShareLink: a finished video's "Copy link" gives /v/{video_id};
// that page plays the video from /v1/videos/{video_id}.mp4 with native
// controls to its end, seeks to the middle through a byte range, shows the
// curve's facts and leads back to the form.
func TestBrowserShareLink(t *testing.T) {
	ctx := browser(t)
	p := startServer(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(pageURL(p, 31)),
		chromedp.WaitVisible(chromedp.CSS(`#facts dd`)),
		chromedp.Click(chromedp.ID("animate")),
	); err != nil {
		t.Fatal(err)
	}
	checkPlayed(t, "form", waitPlayed(ctx, t))
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("copy-link")), chromedp.WaitVisible(chromedp.ID("share-link"))); err != nil {
		t.Fatal(err)
	}
	link, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("share-link").href`))
	if err != nil {
		t.Fatal(err)
	}
	if !shareLinkRE.MatchString(link) || !strings.Contains(link, p.httpAddr) {
		t.Fatalf("share link %q", link)
	}

	tab, cancel := chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Do(tab,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`#shared-facts dd`)),
		waitFor(`document.getElementById("shared-video").readyState >= 1`, 20*time.Second),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.getElementById("shared-video").play().then(() => true)`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, waitFor(`performance.getEntriesByName("whirl:ended").length > 0 || document.getElementById("shared-video").error !== null`, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	played, err := chromedp.Run(tab, chromedp.Evaluate[sharedTab](sharedJS))
	if err != nil {
		t.Fatal(err)
	}
	wantDuration := float64(pageFrames) / pageFPS
	if !played.Ended || played.Error != 0 || played.Duration < wantDuration-0.1 || played.Duration > wantDuration+0.1 {
		t.Errorf("played to the end? %+v; want a %.1f s video ended", played, wantDuration)
	}
	if !played.FormHidden || played.Back != "/" || !strings.Contains(played.Facts, "Symmetry") || !strings.Contains(played.Facts, "90 frames at 30 fps") {
		t.Errorf("share page: %+v", played)
	}

	// Seek to the middle: the player asks for the bytes there and shows them.
	middle := played.Duration / 2
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(() => { performance.clearMarks("whirl:seeked");
		const v = document.getElementById("shared-video"); v.currentTime = v.duration / 2; return true; })()`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab,
		waitFor(`performance.getEntriesByName("whirl:seeked").length > 0 && document.getElementById("shared-video").readyState >= 2`, 20*time.Second),
	); err != nil {
		t.Fatal(err)
	}
	seeked, err := chromedp.Run(tab, chromedp.Evaluate[sharedTab](sharedJS))
	if err != nil {
		t.Fatal(err)
	}
	if d := seeked.CurrentTime - middle; d < -0.1 || d > 0.1 || seeked.Error != 0 {
		t.Errorf("after seeking to %.2f s: %+v", middle, seeked)
	}

	// A link to a video this server does not hold says so.
	if err := chromedp.Do(tab,
		chromedp.Navigate("http://"+p.httpAddr+"/v/"+strings.Repeat("0", 64)),
		waitFor(`document.getElementById("shared-status").textContent !== ""`, 10*time.Second),
	); err != nil {
		t.Fatal(err)
	}
	missing, err := chromedp.Run(tab, chromedp.Evaluate[sharedTab](sharedJS))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(missing.Status, "no longer holds") {
		t.Errorf("unknown video's page: %+v", missing)
	}
}
