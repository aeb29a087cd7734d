package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// startProfiles fetches a CPU profile over most of the run and a short
// execution trace from its middle, from the server's pprof endpoint. The
// returned func waits for them.
func startProfiles(ctx context.Context, metricsAddr, cpuProfile, traceOut string, d time.Duration, log io.Writer) (wait func()) {
	if cpuProfile == "" && traceOut == "" {
		return func() {}
	}
	if metricsAddr == "" {
		fmt.Fprintln(log, "load: no metrics address: server profiles skipped")
		return func() {}
	}
	done := make(chan struct{}, 2)
	n := 0
	get := func(delay time.Duration, url, path string) {
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			if err := fetchToFile(ctx, url, path); err != nil {
				fmt.Fprintln(log, "load: server profile:", err)
				return
			}
			fmt.Fprintln(log, "load: saved", path)
		}()
	}
	base := "http://" + metricsAddr + "/debug/pprof/"
	if cpuProfile != "" {
		secs := max(int(d.Seconds())-2, 1)
		get(time.Second, fmt.Sprintf("%sprofile?seconds=%d", base, secs), cpuProfile)
	}
	if traceOut != "" {
		get(max(d/2-2500*time.Millisecond, 0), base+"trace?seconds=5", traceOut)
	}
	return func() {
		for range n {
			<-done
		}
	}
}

// fetchToFile saves an HTTP GET (a pprof profile or trace) to path.
func fetchToFile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
