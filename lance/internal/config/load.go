package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// Action tells main what Load's caller should do next.
type Action int

const (
	// ActionRun: start the server with the returned Config.
	ActionRun Action = iota
	// ActionHelp: --help was printed to stdout; exit 0.
	ActionHelp
	// ActionGenConfig: --gen-config wrote its file; exit 0.
	ActionGenConfig
)

func (a Action) String() string {
	switch a {
	case ActionRun:
		return "run"
	case ActionHelp:
		return "help"
	case ActionGenConfig:
		return "gen-config"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Canonical values of the enumerated keys (after Normalize).
const (
	ModeL1 = "l1"
	ModeL3 = "l3"

	BackendAuto     = "auto"
	BackendUring    = "uring"
	BackendPwritev2 = "pwritev2"
)

// Default is the configuration with no file, environment or flags.
func Default() Config {
	return Config{
		Node: Node{
			ID:            0,
			DataDir:       "./data",
			ShutdownGrace: 25 * time.Second,
		},
		Network: Network{Bind: "0.0.0.0:1992"},
		IO: IO{
			Backend:      BackendAuto,
			UringSQDepth: 256,
			BatchSize:    4 * MiB,
			SegmentSize:  1 * GiB,
			Prealloc:     64 * MiB,
		},
		NUMA:        NUMA{NICNode: -1, NVMeNode: -1},
		Replication: Replication{Mode: ModeL1, Bind: "0.0.0.0:1993"},
		TLS:         TLS{MinVersion: "1.2"},
		ACL:         ACL{Default: "deny"},
		Limits: Limits{
			MaxFrame:         16 * MiB,
			MaxConnections:   10000,
			ConnBufferBytes:  64 * MiB,
			TopicQueueBytes:  256 * MiB,
			HandshakeTimeout: 10 * time.Second,
			IdleTimeout:      5 * time.Minute,
			WriteTimeout:     30 * time.Second,
			MaxFetchBytes:    16_777_156,
			MaxLongPoll:      30 * time.Second,
		},
		Retention: Retention{CheckInterval: 60 * time.Second},
		HTTP:      HTTP{Bind: "0.0.0.0:8080"},
		Log:       Log{Level: "info", Format: "text"},
	}
}

// Load builds the configuration from the command line (args, without the
// program name), the environment (lookupEnv, os.LookupEnv in main; nil
// means an empty environment) and the file named by --config or
// LANCE_CONFIG, over Default(); later sources win: flag > env > file >
// default. It then normalizes and validates the result.
//
// --help prints to stdout and returns ActionHelp. --gen-config FILE writes
// the commented default file (to stdout when FILE is "-") and returns
// ActionGenConfig. On error the Config is the zero value; the error wraps
// ErrUsage, ErrInvalid or ErrUnknownKey and, for key problems, is (or
// joins) *KeyError values naming the key and where its value came from.
func Load(args []string, lookupEnv func(string) (string, bool), stdout io.Writer) (Config, Action, error) {
	cfg, origin, action, err := gather(args, lookupEnv, stdout)
	if err != nil || action != ActionRun {
		return cfg, action, err
	}
	cfg.Normalize()
	errs := cfg.validate()
	for _, e := range errs {
		if e.Source == "" {
			e.Source = origin[e.Key]
		}
	}
	if len(errs) > 0 {
		return Config{}, ActionRun, joinKeyErrors(errs)
	}
	return cfg, ActionRun, nil
}

// gather is Load without Normalize and Validate. It also returns where
// each key that is not at its default got its value.
func gather(args []string, lookupEnv func(string) (string, bool), stdout io.Writer) (Config, map[string]string, Action, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	if stdout == nil {
		stdout = io.Discard
	}
	cl, err := parseArgs(args)
	if err != nil {
		return Config{}, nil, ActionRun, err
	}
	if cl.help {
		return Default(), nil, ActionHelp, PrintHelp(stdout)
	}
	if cl.genConfig != "" {
		if len(cl.settings) > 0 || cl.configPath != "" {
			return Config{}, nil, ActionGenConfig, fmt.Errorf("%w: --gen-config writes the defaults and takes no other flags", ErrUsage)
		}
		if err := WriteTemplate(cl.genConfig, stdout); err != nil {
			return Config{}, nil, ActionGenConfig, err
		}
		return Default(), nil, ActionGenConfig, nil
	}

	cfg := Default()
	origin := map[string]string{}

	path := cl.configPath
	if path == "" {
		if v, ok := lookupEnv(EnvConfig); ok {
			path = v
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, nil, ActionRun, fmt.Errorf("config file: %w", err)
		}
		var defined []string
		cfg, defined, err = decodeTOML(data, cfg)
		if err != nil {
			return Config{}, nil, ActionRun, fmt.Errorf("config file %s: %w", path, err)
		}
		for _, name := range defined {
			origin[name] = path
		}
	}

	var errs []*KeyError
	for i := range allKeys() {
		k := &allKeys()[i]
		v, ok := lookupEnv(k.Env)
		if !ok {
			continue
		}
		if err := k.set(&cfg, v); err != nil {
			errs = append(errs, withSource(err, k.Env))
			continue
		}
		origin[k.Name] = k.Env
	}
	if len(errs) > 0 {
		return Config{}, nil, ActionRun, joinKeyErrors(errs)
	}

	for _, s := range cl.settings {
		// The value already parsed once when the flag was read.
		if err := s.key.set(&cfg, s.value); err != nil {
			return Config{}, nil, ActionRun, withSource(err, s.source)
		}
		origin[s.key.Name] = s.source
	}
	return cfg, origin, ActionRun, nil
}

func withSource(err error, source string) *KeyError {
	var ke *KeyError
	if errors.As(err, &ke) {
		ke.Source = source
		return ke
	}
	return &KeyError{Key: source, Msg: err.Error(), Kind: ErrInvalid, Err: err}
}

// LoadFile reads a lance.toml over Default() and normalizes and validates
// the result; no environment or flags are involved.
func LoadFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config file: %w", err)
	}
	cfg, err := DecodeTOML(data, Default())
	if err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

// DecodeTOML applies the keys of a lance.toml document over base and
// returns the result, neither normalized nor validated. Unknown keys
// (including keys in the wrong letter case), values of the wrong type and
// durations written as bare integers are errors naming the key.
func DecodeTOML(data []byte, base Config) (Config, error) {
	cfg, _, err := decodeTOML(data, base)
	return cfg, err
}

// upstreamKeys maps upstream's file keys to ours, for a hint when an old
// file is loaded.
var upstreamKeys = map[string]string{
	"node_id":                           "node.id",
	"listen_addr":                       "network.bind",
	"replication_addr":                  "replication.bind",
	"health_addr":                       "http.bind",
	"metrics_addr":                      "http.bind (metrics are served at /metrics)",
	"data_dir":                          "node.data_dir",
	"replication_mode":                  "replication.mode",
	"peers":                             "replication.peers",
	"retention_cleanup_interval_secs":   "retention.check_interval",
	"consumer_rate_limit_bytes_per_sec": "limits.consumer_rate_limit",
	"io.ring_size":                      "io.uring_sq_depth",
	"io.segment_max_size":               "io.segment_size",
	"ingestion.max_payload_size":        "limits.max_frame",
	"tls.cert_path":                     "tls.cert_file",
	"tls.key_path":                      "tls.key_file",
	"tls.ca_path":                       "tls.ca_file",
}

var aclRuleFields = []string{"principal", "topics", "operations"}

func decodeTOML(data []byte, base Config) (Config, []string, error) {
	cfg := base.Clone()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return Config{}, nil, tomlError(err)
	}

	var errs []*KeyError
	var defined []string
	reported := map[string]bool{}
	report := func(e *KeyError, path toml.Key) {
		for i := 1; i < len(path); i++ {
			if reported[path[:i].String()] {
				return
			}
		}
		reported[path.String()] = true
		errs = append(errs, e)
	}
	for _, path := range md.Keys() {
		name := path.String()
		switch len(path) {
		case 1:
			if _, ok := sectionNames()[path[0]]; !ok {
				report(unknownKeyError(path), path)
			}
		case 2:
			if k, ok := lookupKey(name); ok {
				defined = append(defined, k.Name)
			} else {
				report(unknownKeyError(path), path)
			}
		default:
			if name == "acl.rules."+path[2] && len(path) == 3 && slices.Contains(aclRuleFields, path[2]) {
				continue
			}
			report(unknownKeyError(path), path)
		}
	}
	// Belt and braces: anything the decoder did not store is unknown too.
	for _, path := range md.Undecoded() {
		if !reported[path.String()] {
			report(unknownKeyError(path), path)
		}
	}
	for i := range allKeys() {
		k := &allKeys()[i]
		if k.kind != kindDuration || !md.IsDefined(k.Section, k.Field) {
			continue
		}
		if t := md.Type(k.Section, k.Field); t != "String" {
			errs = append(errs, invalid(k.Name, fmt.Sprintf("a duration is a string like \"25s\" or \"5m\", not a bare %s", strings.ToLower(t))))
		}
	}
	if len(errs) > 0 {
		return Config{}, nil, joinKeyErrors(errs)
	}
	cfg.dropEmptyLists()
	return cfg, defined, nil
}

func unknownKeyError(path toml.Key) *KeyError {
	name := path.String()
	msg := "unknown key"
	if len(path) == 1 {
		msg = "unknown key or section"
	}
	if hint, ok := upstreamKeys[name]; ok {
		msg += "; this is upstream's name, use " + hint
	} else if k, ok := lookupKey(strings.ToLower(name)); ok {
		msg += "; keys are lower case: " + k.Name
	} else if _, ok := sectionNames()[strings.ToLower(name)]; ok && len(path) == 1 {
		msg += "; sections are lower case: " + strings.ToLower(name)
	}
	return unknownKey(name, msg)
}

var (
	sectionsOnce sync.Once
	sectionSet   map[string]struct{}
)

// sectionNames is the set of toml tables Config has.
func sectionNames() map[string]struct{} {
	sectionsOnce.Do(func() {
		sectionSet = map[string]struct{}{}
		for _, k := range allKeys() {
			sectionSet[k.Section] = struct{}{}
		}
	})
	return sectionSet
}

// tomlError turns a decoder error into one naming the key when the decoder
// knows it.
func tomlError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.LastKey != "" && pe.Position.Line > 0 {
			return &KeyError{Key: pe.LastKey, Msg: fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message), Kind: ErrInvalid, Err: err}
		}
		if pe.LastKey != "" {
			return &KeyError{Key: pe.LastKey, Msg: pe.Message, Kind: ErrInvalid, Err: err}
		}
		return fmt.Errorf("%w: TOML syntax error on line %d: %s", ErrInvalid, pe.Position.Line, pe.Message)
	}
	// Type mismatches carry the key in their text: `toml: line 3 (last
	// key "node.id"): incompatible types: ...`.
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// Clone returns a copy sharing no slices with c.
func (c Config) Clone() Config {
	out := c
	out.Replication.Peers = slices.Clone(c.Replication.Peers)
	out.Auth.Tokens = slices.Clone(c.Auth.Tokens)
	if c.ACL.Rules != nil {
		out.ACL.Rules = make([]ACLRule, len(c.ACL.Rules))
		for i, r := range c.ACL.Rules {
			out.ACL.Rules[i] = ACLRule{
				Principal:  r.Principal,
				Topics:     slices.Clone(r.Topics),
				Operations: slices.Clone(r.Operations),
			}
		}
	}
	return out
}

// dropEmptyLists makes every empty list nil, so a file that writes
// `peers = []` equals one that leaves it out.
func (c *Config) dropEmptyLists() {
	nilIfEmpty := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	c.Replication.Peers = nilIfEmpty(c.Replication.Peers)
	c.Auth.Tokens = nilIfEmpty(c.Auth.Tokens)
	if len(c.ACL.Rules) == 0 {
		c.ACL.Rules = nil
	}
	for i := range c.ACL.Rules {
		c.ACL.Rules[i].Topics = nilIfEmpty(c.ACL.Rules[i].Topics)
		c.ACL.Rules[i].Operations = nilIfEmpty(c.ACL.Rules[i].Operations)
	}
}

// setting is one key flag from the command line, applied after the
// environment.
type setting struct {
	key    *Key
	value  string
	source string // "--io-o-direct" or "-l"
}

type cmdline struct {
	configPath string
	genConfig  string
	help       bool
	settings   []setting
	setErr     error
}

// keyFlag is the flag.Value of one name of one key. It checks the value
// at once (so a bad value is reported as a flag error) but records it
// for later, because flags are applied over the file and the environment.
type keyFlag struct {
	key  *Key
	name string
	cl   *cmdline
}

func flagDisplay(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func (f *keyFlag) String() string { return "" }

func (f *keyFlag) IsBoolFlag() bool { return f.key != nil && f.key.kind == kindBool }

func (f *keyFlag) Set(s string) error {
	scratch := Default()
	if err := f.key.set(&scratch, s); err != nil {
		f.cl.setErr = fmt.Errorf("flag %s: %w", flagDisplay(f.name), withSource(err, ""))
		return err
	}
	f.cl.settings = append(f.cl.settings, setting{key: f.key, value: s, source: flagDisplay(f.name)})
	return nil
}

func newFlagSet(cl *cmdline) *flag.FlagSet {
	fs := flag.NewFlagSet("lance", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	setPath := func(dst *string, what string) func(string) error {
		return func(s string) error {
			if s == "" {
				return fmt.Errorf("%s needs a file name", what)
			}
			*dst = s
			return nil
		}
	}
	fs.Func("config", "", setPath(&cl.configPath, "--config"))
	fs.Func("c", "", setPath(&cl.configPath, "--config"))
	fs.Func("gen-config", "", setPath(&cl.genConfig, "--gen-config"))
	for i := range allKeys() {
		k := &allKeys()[i]
		for _, name := range append([]string{k.Flag}, k.Aliases...) {
			fs.Var(&keyFlag{key: k, name: name, cl: cl}, name, k.Help)
		}
	}
	for name, msg := range retiredFlags {
		fs.BoolFunc(name, "", func(string) error {
			cl.setErr = fmt.Errorf("upstream flag %s is not supported: %s", flagDisplay(name), msg)
			return cl.setErr
		})
	}
	return fs
}

func parseArgs(args []string) (*cmdline, error) {
	cl := &cmdline{}
	fs := newFlagSet(cl)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cl.help = true
			return cl, nil
		}
		if cl.setErr != nil {
			return nil, fmt.Errorf("%w: %w", ErrUsage, cl.setErr)
		}
		return nil, fmt.Errorf("%w: %s", ErrUsage, strings.Replace(err.Error(), " -", " --", 1))
	}
	if rest := fs.Args(); len(rest) > 0 {
		msg := fmt.Sprintf("unexpected argument %q", rest[0])
		if rest[0] == "true" || rest[0] == "false" {
			msg += " (boolean flags take their value with =, as in --io-o-direct=false)"
		}
		return nil, fmt.Errorf("%w: %s", ErrUsage, msg)
	}
	return cl, nil
}

// PrintHelp writes the --help text: every flag with its toml key,
// environment variable and default.
func PrintHelp(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`Usage: lance [flags]

lance is the LANCE stream server. Its configuration comes from, in order of
increasing precedence: built-in defaults, the TOML file named by --config
(or $LANCE_CONFIG), LANCE_* environment variables, and flags. Sizes take a
byte count or a binary unit (256KiB, 64MiB, 1GiB); durations take a unit
(25s, 5m); lists are comma separated; boolean flags take =false to turn off.
ACL rules (acl.rules) are easiest to write in the file; as a flag or
variable they are a TOML array of inline tables.

General:
  -c, --config FILE
        TOML configuration file [$LANCE_CONFIG]
  --gen-config FILE
        write a commented lance.toml with every key at its default and exit;
        "-" writes to stdout; an existing file is never overwritten
  -h, --help
        print this help and exit
`)
	def := Default()
	section := ""
	for i := range allKeys() {
		k := &allKeys()[i]
		if k.Section != section {
			section = k.Section
			fmt.Fprintf(&b, "\n[%s]\n", section)
		}
		names := make([]string, 0, 1+len(k.Aliases))
		for _, a := range k.Aliases {
			if len(a) == 1 {
				names = append(names, flagDisplay(a))
			}
		}
		names = append(names, flagDisplay(k.Flag))
		for _, a := range k.Aliases {
			if len(a) > 1 {
				names = append(names, flagDisplay(a))
			}
		}
		dv := k.format(&def)
		if k.kind == kindString || k.kind == kindList {
			dv = fmt.Sprintf("%q", dv)
		}
		fmt.Fprintf(&b, "  %s %s\n        %s (default %s) [$%s]\n", strings.Join(names, ", "), k.Type, k.Help, dv, k.Env)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
