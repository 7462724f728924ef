package cli

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"bogus"}, `unknown command "bogus"`},
		{"unknown subcommand", []string{"topics", "bogus"}, `unknown command "bogus"`},
		{"unknown flag", []string{"produce", "--topic", "t", "--bogus"}, "unknown flag: --bogus"},
		{"missing required flag", []string{"consume"}, `required flag(s) "topic" not set`},
		{"bad offset", []string{"consume", "--topic", "t", "--offset", "soon"}, `--offset "soon"`},
		{"bad offset time", []string{"consume", "--topic", "t", "--offset", "@yesterday"}, "--offset:"},
		{"bad output", []string{"consume", "--topic", "t", "--output", "xml"}, `--output "xml"`},
		{"negative max", []string{"consume", "--topic", "t", "--max", "-1"}, "--max must not be negative"},
		{"bad topic name", []string{"consume", "--topic", "no spaces"}, `--topic "no spaces"`},
		{"bad timeout", []string{"topics", "list", "--timeout", "0s"}, "--timeout must be positive"},
		{"data and file", []string{"produce", "--topic", "t", "--data", "x", "--file", "f"}, "none of the others can be"},
		{"key and separator", []string{"produce", "--topic", "t", "--key", "k", "--key-separator", "="}, "none of the others can be"},
		{"bad type", []string{"produce", "--topic", "t", "--type", "xml", "--data", "x"}, `--type "xml"`},
		{"reserved type", []string{"produce", "--topic", "t", "--type", "0x00", "--data", "x"}, "reserved"},
		{"compressed type", []string{"produce", "--topic", "t", "--type", "0x0f", "--data", "x"}, "compressed"},
		{"kv without key", []string{"produce", "--topic", "t", "--type", "kv", "--data", "x"}, "needs --key"},
		{"json with key", []string{"produce", "--topic", "t", "--type", "json", "--key", "k", "--data", "{}"}, "carries no key"},
		{"raw with timestamp", []string{"produce", "--topic", "t", "--type", "raw", "--timestamp", "now", "--data", "x"}, "carries no timestamp"},
		{"null with value", []string{"produce", "--topic", "t", "--type", "null", "--data", "x"}, "carry no value"},
		{"bad timestamp", []string{"produce", "--topic", "t", "--timestamp", "noon", "--data", "x"}, "--timestamp"},
		{"negative batch", []string{"produce", "--topic", "t", "--batch", "-1", "--data", "x"}, "--batch"},
		{"cert without key", []string{"topics", "list", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{"token and token file", []string{"topics", "list", "--token", "a", "--token-file", "f"}, "not both"},
		{"create without name", []string{"topics", "create"}, "accepts 1 arg(s)"},
		{"retention without limits", []string{"topics", "retention", "t"}, `required flag(s) "max-age", "max-bytes" not set`},
		{"bad age", []string{"topics", "retention", "t", "--max-age", "1.5s", "--max-bytes", "0"}, "whole number of seconds"},
		{"bad size", []string{"topics", "retention", "t", "--max-age", "0", "--max-bytes", "lots"}, "--max-bytes"},
		{"export latest", []string{"export", "--topic", "t", "--offset", "latest"}, "exports nothing"},
		{"verify without dir", []string{"verify"}, "accepts 1 arg(s)"},
		{"status with args", []string{"cluster", "status", "x"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fails(t, ExitUsage, tc.want, "", tc.args...)
			if !strings.Contains(r.err, "--help' for usage") {
				t.Errorf("no usage hint in %q", r.err)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	out := ok(t, "", "--help")
	for _, cmd := range []string{"produce", "consume", "topics", "cluster", "inspect", "verify", "repair", "export", "import", "completion"} {
		if !strings.Contains(out, "  "+cmd+" ") {
			t.Errorf("--help does not list %s:\n%s", cmd, out)
		}
	}
	if out := ok(t, ""); !strings.Contains(out, "Available Commands") {
		t.Errorf("lnc without arguments: %q", out)
	}
	if out := ok(t, "", "topics"); !strings.Contains(out, "retention") {
		t.Errorf("lnc topics: %q", out)
	}
	out = ok(t, "", "consume", "--help")
	for _, flag := range []string{"--endpoint", "--tls-ca", "--tls-server-name", "--token", "--timeout", "--follow", "--offset"} {
		if !strings.Contains(out, flag) {
			t.Errorf("consume --help lacks %s", flag)
		}
	}
	if out := ok(t, "", "verify", "--help"); strings.Contains(out, "--endpoint") {
		t.Errorf("an offline command has network flags:\n%s", out)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if out := ok(t, "", "completion", shell); len(out) < 100 {
			t.Errorf("completion %s printed %q", shell, out)
		}
	}
	s := startServer(t)
	ok(t, "", args([]string{"topics", "create", "orders"}, s.ep())...)
	ok(t, "", args([]string{"topics", "create", "payments"}, s.ep())...)
	out := ok(t, "", args([]string{"__complete", "topics", "get"}, s.ep(), []string{"or"})...)
	if !strings.Contains(out, "orders\n") || strings.Contains(out, "payments") {
		t.Errorf("topic completion: %q", out)
	}
	out = ok(t, "", args([]string{"__complete", "consume"}, s.ep(), []string{"--topic", ""})...)
	if !strings.Contains(out, "orders\n") || !strings.Contains(out, "payments\n") {
		t.Errorf("--topic completion: %q", out)
	}
	out = ok(t, "", "__complete", "produce", "--type", "key-")
	if !strings.Contains(out, "key-timestamped") {
		t.Errorf("--type completion: %q", out)
	}
}

func TestConnectionErrors(t *testing.T) {
	addr := freeAddr(t) // nothing listens there
	r := fails(t, ExitError, "connect to "+addr, "", "topics", "list", "--endpoint", addr, "--timeout", "2s")
	if r.out != "" {
		t.Errorf("stdout %q", r.out)
	}
	t.Setenv(envEndpoint, addr)
	fails(t, ExitError, "connect to "+addr, "", "cluster", "status", "--timeout", "2s")
}

func TestInterrupted(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := lncCtx(ctx, "", args([]string{"topics", "list"}, s.ep())...)
	if r.code != ExitInterrupted || r.err != "lnc: interrupted\n" {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                            now,
		"-15m":                           now.Add(-15 * time.Minute),
		"2026-01-02T03:04:05Z":           time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"2026-01-02T03:04:05.5+01:00":    time.Date(2026, 1, 2, 2, 4, 5, 5e8, time.UTC),
		"1764230400000":                  time.UnixMilli(1764230400000),
		"1764230400000ms":                time.UnixMilli(1764230400000),
		"1764230400s":                    time.Unix(1764230400, 0),
		"1764230400123456789":            time.Unix(0, 1764230400123456789),
		"1764230400123456789ns":          time.Unix(0, 1764230400123456789),
		"5ns":                            time.Unix(0, 5),
		"2026-11-27T08:00:00.123456789Z": time.Date(2026, 11, 27, 8, 0, 0, 123456789, time.UTC),
	} {
		got, err := parseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-", "-x", "1.5", "+5", "12ks", "99999999999999999999", "9223372036854775807s", "2026-13-01T00:00:00Z"} {
		if _, err := parseTime(in, now); err == nil {
			t.Errorf("parseTime(%q) accepted", in)
		}
	}
}

func TestParseSizeAgeType(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "1024": 1024, "1KiB": 1024, "10GiB": 10 << 30, "5MB": 5e6, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5GiB", "99999999999TiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
	for in, want := range map[string]time.Duration{"0": 0, "7d": 7 * 24 * time.Hour, "168h": 168 * time.Hour, "90s": 90 * time.Second} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "1.5s", "-1h", "7 d", "xd", "100ms"} {
		if _, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) accepted", in)
		}
	}
	for _, tn := range typeNames {
		if got, err := parseType(tn.name); err != nil || got != tn.t || typeName(got) != tn.name {
			t.Errorf("type %s: %v, %v", tn.name, got, err)
		}
	}
	if got, err := parseType("0x80"); err != nil || got != 0x80 || typeName(got) != "0x80" {
		t.Errorf("0x80: %v %v", got, err)
	}
	if got, err := parseType("18"); err != nil || got != 0x12 {
		t.Errorf("18: %v %v", got, err)
	}
	for _, in := range []string{"0", "0x0f", "256", "JSON"} {
		if _, err := parseType(in); err == nil {
			t.Errorf("parseType(%q) accepted", in)
		}
	}
}
