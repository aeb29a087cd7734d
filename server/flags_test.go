package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// configDoc is the page whose flag table TestFlagTable keeps in step with the code.
const configDoc = "../docs/CONFIGURATION.md"

var update = flag.Bool("update", false, "rewrite the flag table in docs/CONFIGURATION.md")

// flagTable renders every server flag as docs/CONFIGURATION.md's markdown table.
func flagTable() string {
	var cfg config
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	newFlagSet(&cfg).VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		switch {
		case f.Name == "render-slots" || f.Name == "render-workers" || f.Name == "encode-parallelism":
			def = "GOMAXPROCS (CPUs usable)"
		case f.Name == "cache-dir":
			def = "user cache directory/whirl"
		case f.Name == "still-slots":
			def = "GOMAXPROCS − 1, at least 1"
		case def == "":
			def = "(empty)"
		}
		env := "`" + envName(f.Name) + "`"
		if f.Name == "version" {
			env = "—"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | `%s` | %s |\n", f.Name, env, def, f.Usage)
	})
	return b.String()
}

// TestFlagTable fails when docs/CONFIGURATION.md's flag table and the code
// disagree; `go test ./server -run TestFlagTable -update` rewrites it.
func TestFlagTable(t *testing.T) {
	const begin, end = "<!-- flags:begin -->\n", "<!-- flags:end -->"
	doc, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q ... %q markers", configDoc, begin, end)
	}
	want := flagTable()
	if got := s[i+len(begin) : j]; got != want {
		if *update {
			if err := os.WriteFile(configDoc, []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("%s flag table is stale; run `go test ./server -run TestFlagTable -update`.\nwant:\n%s\ngot:\n%s", configDoc, want, got)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(config) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c config) bool {
			return c.addr == ":50051" && c.httpAddr == ":8080" && c.corsOrigins == "" && c.capacity == 5 && c.leaseTTL == 5*time.Minute && c.leaseMaxAge == 30*time.Minute
		}, ""},
		{"env fallback", nil, map[string]string{"WHIRL_CAPACITY": "7", "WHIRL_LEASE_TTL": "90s", "WHIRL_ADMIN_TOKEN": "t"}, func(c config) bool {
			return c.capacity == 7 && c.leaseTTL == 90*time.Second && c.adminToken == "t"
		}, ""},
		{"flag beats env", []string{"--capacity", "3"}, map[string]string{"WHIRL_CAPACITY": "7"}, func(c config) bool { return c.capacity == 3 }, ""},
		{"operator defaults", nil, nil, func(c config) bool {
			return c.maxConnAge == 5*time.Minute && c.maxConnGrace == 10*time.Minute && c.reflection && !c.version
		}, ""},
		{"no reflection", []string{"--reflection=false"}, nil, func(c config) bool { return !c.reflection }, ""},
		{"version is not read from the environment", nil, map[string]string{"WHIRL_VERSION": "true"}, func(c config) bool { return !c.version }, ""},
		{"token and token file", []string{"--admin-token", "t", "--admin-token-file", "/f"}, nil, nil, "--admin-token-file"},
		{"negative connection age", []string{"--max-connection-age", "-1s"}, nil, nil, "--max-connection-age"},
		{"bad env value", nil, map[string]string{"WHIRL_LEASE_TTL": "soon"}, nil, "WHIRL_LEASE_TTL"},
		{"zero capacity", []string{"--capacity", "0"}, nil, nil, "--capacity"},
		{"max age below ttl", []string{"--lease-ttl", "10m", "--lease-max-age", "5m"}, nil, nil, "--lease-max-age"},
		{"pprof without metrics", []string{"--pprof"}, nil, nil, "--pprof"},
		{"cors without http", []string{"--http-addr", "", "--cors-origins", "https://a.example"}, nil, nil, "--cors-origins"},
		{"http off", []string{"--http-addr", ""}, nil, func(c config) bool { return c.httpAddr == "" }, ""},
		{"cors origins", []string{"--cors-origins", "https://a.example, http://localhost:3000,*"}, nil, func(c config) bool { return c.corsOrigins != "" }, ""},
		{"cors origin with a path", []string{"--cors-origins", "https://a.example/app"}, nil, nil, "--cors-origins"},
		{"cors origin without a scheme", []string{"--cors-origins", "a.example"}, nil, nil, "--cors-origins"},
		{"stray argument", []string{"extra"}, nil, nil, "unexpected"},
		{"shared cache off", nil, nil, func(c config) bool { return c.sharedCache.url == "" && c.sharedCache.uploads == 2 }, ""},
		{"shared cache s3", []string{"--shared-cache-url", "s3://videos?region=eu-west-1&endpoint=http://127.0.0.1:9000&use_path_style=true&prefix=v/"}, nil,
			func(c config) bool { return strings.HasPrefix(c.sharedCache.url, "s3://videos") }, ""},
		{"shared cache from env", nil, map[string]string{"WHIRL_SHARED_CACHE_URL": "file:///srv/videos"}, func(c config) bool { return c.sharedCache.url == "file:///srv/videos" }, ""},
		{"shared cache other scheme", []string{"--shared-cache-url", "gs://videos"}, nil, nil, "--shared-cache-url"},
		{"shared cache credentials", []string{"--shared-cache-url", "s3://key:secret@videos"}, nil, nil, "AWS_ACCESS_KEY_ID"},
		{"shared cache uploads", []string{"--shared-cache-uploads", "0"}, nil, nil, "--shared-cache-uploads"},
		{"video limits", []string{"--video-rate", "-1"}, nil, nil, "--video-rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			cfg, err := parseConfig(tt.args, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(cfg) {
				t.Fatalf("cfg %+v, err %v", cfg, err)
			}
		})
	}
}
