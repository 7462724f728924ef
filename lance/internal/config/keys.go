package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// Key describes one configuration key and the three names it goes by.
// The list is derived from the Config struct by reflection, so a new field
// gets its flag and environment variable without further work (the tests
// insist that it also gets help text).
type Key struct {
	Name    string   // dotted toml name, "io.o_direct"
	Section string   // toml table, "io"
	Field   string   // key inside the table, "o_direct"
	Flag    string   // long flag without dashes, "io-o-direct"
	Aliases []string // other flag names (upstream's), "listen", "l"
	Env     string   // environment variable, "LANCE_IO_O_DIRECT"
	Type    string   // value syntax shown in --help: bool, string, int, size, duration, list, rules, ...
	Help    string   // one-line meaning

	index []int
	kind  valueKind
}

type valueKind int

const (
	kindString valueKind = iota
	kindBool
	kindInt
	kindUint
	kindSize
	kindDuration
	kindList
	kindRules
)

// EnvPrefix starts every environment variable lance reads.
const EnvPrefix = "LANCE_"

// EnvConfig names the configuration file when --config is not given.
const EnvConfig = "LANCE_CONFIG"

// flagAliases are upstream's flag names for the keys that had one. The
// derived names (node-id, replication-mode) already match upstream's for
// two more.
var flagAliases = map[string][]string{
	"node.id":           {"n"},
	"node.data_dir":     {"data-dir", "d"},
	"network.bind":      {"listen", "l"},
	"http.bind":         {"health"},
	"replication.peers": {"peers"},
	"replication.bind":  {"replication"},
}

// retiredFlags are upstream flags with no counterpart here; using one is an
// error that explains what to do instead, not a silent no-op.
var retiredFlags = map[string]string{
	"metrics":                  "metrics are served on the HTTP listener at /metrics; use --http-bind (--health)",
	"m":                        "metrics are served on the HTTP listener at /metrics; use --http-bind (--health)",
	"wal-enabled":              "there is no separate WAL; every acknowledged batch is already synced to its segment",
	"wal-size":                 "there is no separate WAL; see --io-segment-size",
	"ingestion-actor-count":    "ingest concurrency is not configured by thread count; see --io-workers",
	"replication-max-inflight": "not configurable in this server",
	"consumer-rate-limit":      "use --limits-consumer-rate-limit (bytes per second per connection, not shared by all connections)",
}

// keyHelp is the meaning of every key, shown by --help, written into the
// generated lance.toml and into docs/configuration.md.
var keyHelp = map[string]string{
	"node.id":             "node identifier, unique in a cluster (0-65535)",
	"node.data_dir":       "directory holding topics and segments; created if missing",
	"node.shutdown_grace": "longest drain on SIGTERM/SIGINT before connections are cut",

	"network.bind":         "client (LWP) listener address, host:port",
	"network.nic_pci_addr": "PCI address of the client NIC, e.g. 0000:3b:00.0; gives numa.nic_node when that is -1",

	"io.backend":        "storage I/O backend: auto, uring or pwritev2",
	"io.uring_sq_depth": "io_uring submission queue entries per ring (1-32768)",
	"io.workers":        "number of rings or pwritev2 workers; 0 lets the backend choose",
	"io.batch_size":     "most bytes one group commit of a topic gathers before it syncs",
	"io.o_direct":       "write segments with O_DIRECT",
	"io.segment_size":   "size at which a segment is sealed and a new one started",
	"io.prealloc":       "disk space reserved ahead of the write position; 0 turns it off",

	"numa.enabled":   "pin ingest threads to the NIC's NUMA node and storage threads to the data device's",
	"numa.nic_node":  "NUMA node of the client NIC; -1 derives it from network.nic_pci_addr",
	"numa.nvme_node": "NUMA node of the data device; -1 derives it from node.data_dir's block device",

	"replication.mode":  "l1 (single node, no replication) or l3 (quorum replication); case-insensitive",
	"replication.peers": "other cluster members, host:port or id@host:port",
	"replication.bind":  "replication listener address, host:port",

	"tls.enabled":             "serve the client port over TLS",
	"tls.cert_file":           "PEM certificate chain of the server",
	"tls.key_file":            "PEM private key of the server",
	"tls.ca_file":             "PEM CAs that sign client certificates; makes the server ask for one",
	"tls.require_client_cert": "refuse clients without a valid certificate (mTLS); needs tls.ca_file",
	"tls.min_version":         "lowest TLS version accepted: 1.2 or 1.3",

	"auth.enabled":    "require a token (Authenticate command) before requests",
	"auth.write_only": "only writes (ingest, topic administration) need a token; reads do not",
	"auth.tokens":     "accepted tokens; prefer auth.token_file (a flag value is visible to every user in ps)",
	"auth.token_file": "file with one token per line, # starts a comment",

	"acl.enabled": "check every request against the per-topic rules",
	"acl.default": "outcome for a request no rule matches: deny or allow",
	"acl.rules":   "per-topic access rules; as a flag or variable, a TOML array of inline tables",

	"limits.max_frame":           "largest frame payload accepted",
	"limits.max_connections":     "most client connections open at once",
	"limits.conn_buffer_bytes":   "in-flight ingest bytes per connection",
	"limits.topic_queue_bytes":   "bytes waiting for one topic's writer",
	"limits.handshake_timeout":   "time allowed for the TLS handshake and the first frame, and (token auth on every request) to authenticate",
	"limits.idle_timeout":        "a connection with no frame for this long is closed; 0 = never",
	"limits.write_timeout":       "time allowed for writing one reply",
	"limits.max_fetch_bytes":     "cap on the data in one fetch reply",
	"limits.max_long_poll":       "cap on the wait of a long-poll fetch",
	"limits.consumer_rate_limit": "fetch bytes per second per connection; 0 = unlimited",

	"retention.max_age":        "default age limit of topics without their own; 0 = unlimited",
	"retention.max_bytes":      "default size limit of topics without their own; 0 = unlimited",
	"retention.check_interval": "how often retention is enforced",

	"http.bind":  "health and metrics HTTP listener, host:port; empty turns it off",
	"http.pprof": "serve Go runtime profiles (net/http/pprof) under /debug/pprof/ on the HTTP listener",

	"log.level":  "log level: debug, info, warn or error",
	"log.format": "log format on stderr: text or json",
}

var (
	keysOnce sync.Once
	keysList []Key
	keysByID map[string]*Key
)

// Keys lists every configuration key in struct order.
func Keys() []Key {
	keysOnce.Do(buildKeys)
	out := make([]Key, len(keysList))
	copy(out, keysList)
	for i := range out {
		out[i].Aliases = append([]string(nil), out[i].Aliases...)
	}
	return out
}

// lookupKey finds a key by dotted name.
func lookupKey(name string) (*Key, bool) {
	keysOnce.Do(buildKeys)
	k, ok := keysByID[name]
	return k, ok
}

func allKeys() []Key {
	keysOnce.Do(buildKeys)
	return keysList
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[ByteSize]()
	listType     = reflect.TypeFor[[]string]()
	rulesType    = reflect.TypeFor[[]ACLRule]()
)

func buildKeys() {
	ct := reflect.TypeFor[Config]()
	keysByID = map[string]*Key{}
	for i := range ct.NumField() {
		sf := ct.Field(i)
		section := tomlName(sf)
		for j := range sf.Type.NumField() {
			ff := sf.Type.Field(j)
			field := tomlName(ff)
			name := section + "." + field
			k := Key{
				Name:    name,
				Section: section,
				Field:   field,
				Flag:    strings.ReplaceAll(section+"-"+field, "_", "-"),
				Aliases: flagAliases[name],
				Env:     EnvPrefix + strings.ToUpper(section+"_"+field),
				Help:    keyHelp[name],
				index:   []int{i, j},
			}
			k.kind, k.Type = kindOf(ff.Type)
			keysList = append(keysList, k)
		}
	}
	for i := range keysList {
		keysByID[keysList[i].Name] = &keysList[i]
	}
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

func kindOf(t reflect.Type) (valueKind, string) {
	switch t {
	case durationType:
		return kindDuration, "duration"
	case sizeType:
		return kindSize, "size"
	case listType:
		return kindList, "list"
	case rulesType:
		return kindRules, "rules"
	}
	switch t.Kind() {
	case reflect.String:
		return kindString, "string"
	case reflect.Bool:
		return kindBool, "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kindInt, "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kindUint, t.Kind().String()
	}
	// A field of a type nobody taught Keys about; the reflection test
	// fails on it, so this never ships.
	panic(fmt.Sprintf("config: key type %s is not supported", t))
}

// field returns the settable field of c this key describes.
func (k *Key) field(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(k.index)
}

// set parses s (the flag and environment form) into the key's field.
func (k *Key) set(c *Config, s string) error {
	f := k.field(c)
	switch k.kind {
	case kindString:
		f.SetString(s)
	case kindBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return invalidCause(k.Name, fmt.Sprintf("%q is not a boolean (true or false)", s), err)
		}
		f.SetBool(b)
	case kindInt:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, f.Type().Bits())
		if err != nil {
			return invalidCause(k.Name, fmt.Sprintf("%q is not an integer in range", s), err)
		}
		f.SetInt(n)
	case kindUint:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, f.Type().Bits())
		if err != nil {
			return invalidCause(k.Name, fmt.Sprintf("%q is not a whole number in range (0-%d)", s, uint64(1)<<f.Type().Bits()-1), err)
		}
		f.SetUint(n)
	case kindSize:
		n, err := ParseByteSize(s)
		if err != nil {
			return invalidCause(k.Name, err.Error(), err)
		}
		f.SetInt(int64(n))
	case kindDuration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return invalidCause(k.Name, fmt.Sprintf("%q is not a duration like \"25s\" or \"5m\"", s), err)
		}
		f.SetInt(int64(d))
	case kindList:
		f.Set(reflect.ValueOf(splitList(s)))
	case kindRules:
		rules, err := parseRules(k.Name, s)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(rules))
	}
	return nil
}

// splitList reads a comma list; blanks around items and empty items are
// dropped, so "" is the empty list.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseRules reads ACL rules written as the TOML value of acl.rules: an
// array of inline tables, for example
//
//	[{principal = "CN=ingest", topics = ["orders-*"], operations = ["produce"]}]
func parseRules(key, s string) ([]ACLRule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var holder struct {
		Rules []ACLRule `toml:"rules"`
	}
	md, err := toml.Decode("rules = "+s, &holder)
	if err != nil {
		return nil, invalidCause(key, "not a TOML array of inline tables like [{principal = \"*\", topics = [\"*\"], operations = [\"consume\"]}]: "+err.Error(), err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		u := undecoded[0]
		if u[0] != "rules" {
			return nil, invalid(key, fmt.Sprintf("unexpected key %q after the rules", u.String()))
		}
		return nil, unknownKey(key, fmt.Sprintf("rule has unknown key %q (rules have principal, topics, operations)", u[len(u)-1]))
	}
	if !md.IsDefined("rules") {
		return nil, invalid(key, "not a TOML array of inline tables")
	}
	return holder.Rules, nil
}

// format writes the key's value in the form set reads, for --help and for
// error messages.
func (k *Key) format(c *Config) string {
	f := k.field(c)
	switch k.kind {
	case kindString:
		return f.String()
	case kindBool:
		return strconv.FormatBool(f.Bool())
	case kindInt:
		return strconv.FormatInt(f.Int(), 10)
	case kindUint:
		return strconv.FormatUint(f.Uint(), 10)
	case kindSize:
		return ByteSize(f.Int()).String()
	case kindDuration:
		return formatDuration(time.Duration(f.Int()))
	case kindList:
		return strings.Join(f.Interface().([]string), ",")
	case kindRules:
		return rulesTOML(f.Interface().([]ACLRule))
	}
	return ""
}

// formatDuration is time.Duration.String without the trailing zero units
// ("5m" rather than "5m0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// rulesTOML writes rules as a TOML array of inline tables.
func rulesTOML(rules []ACLRule) string {
	if len(rules) == 0 {
		return "[]"
	}
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = fmt.Sprintf("{principal = %s, topics = %s, operations = %s}",
			tomlString(r.Principal), tomlStrings(r.Topics), tomlStrings(r.Operations))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
