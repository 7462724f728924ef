package config

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// leafFields lists every leaf field of Config as "section.key" from the
// toml tags, independently of Keys, so a new field cannot be forgotten.
func leafFields(t *testing.T) []string {
	t.Helper()
	var out []string
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sf := ct.Field(i)
		if sf.Type.Kind() != reflect.Struct {
			t.Fatalf("Config.%s is not a section struct", sf.Name)
		}
		sec := sf.Tag.Get("toml")
		if sec == "" {
			t.Fatalf("Config.%s has no toml tag", sf.Name)
		}
		for j := range sf.Type.NumField() {
			ff := sf.Type.Field(j)
			key := ff.Tag.Get("toml")
			if key == "" {
				t.Fatalf("%s.%s has no toml tag", sf.Name, ff.Name)
			}
			out = append(out, sec+"."+key)
		}
	}
	return out
}

func TestEveryFieldIsAKey(t *testing.T) {
	fields := leafFields(t)
	keys := Keys()
	if len(keys) != len(fields) {
		t.Fatalf("%d keys for %d fields", len(keys), len(fields))
	}
	fs := newFlagSet(&cmdline{})
	var help bytes.Buffer
	if err := PrintHelp(&help); err != nil {
		t.Fatal(err)
	}
	template := string(Marshal(Default()))
	seenEnv := map[string]bool{}
	seenFlag := map[string]bool{}
	for i, name := range fields {
		k := keys[i]
		t.Run(name, func(t *testing.T) {
			if k.Name != name {
				t.Fatalf("key %d is %q, field is %q", i, k.Name, name)
			}
			wantEnv := "LANCE_" + strings.ToUpper(strings.ReplaceAll(name, ".", "_"))
			if k.Env != wantEnv {
				t.Errorf("env %q, want %q", k.Env, wantEnv)
			}
			wantFlag := strings.ReplaceAll(strings.ReplaceAll(name, ".", "-"), "_", "-")
			if k.Flag != wantFlag {
				t.Errorf("flag %q, want %q", k.Flag, wantFlag)
			}
			if k.Help == "" {
				t.Errorf("no help text")
			}
			for _, f := range append([]string{k.Flag}, k.Aliases...) {
				if fs.Lookup(f) == nil {
					t.Errorf("flag %q is not registered", f)
				}
				if seenFlag[f] {
					t.Errorf("flag %q used twice", f)
				}
				seenFlag[f] = true
				if !strings.Contains(help.String(), flagDisplay(f)+" ") && !strings.Contains(help.String(), flagDisplay(f)+",") {
					t.Errorf("--help does not show %s", flagDisplay(f))
				}
			}
			if seenEnv[k.Env] {
				t.Errorf("env %q used twice", k.Env)
			}
			seenEnv[k.Env] = true
			if !strings.Contains(help.String(), "[$"+k.Env+"]") {
				t.Errorf("--help does not show $%s", k.Env)
			}
			if !strings.Contains(template, "env "+k.Env) {
				t.Errorf("generated file does not document %s", k.Env)
			}
			if k.kind != kindRules && !strings.Contains(template, "\n"+k.Field+" = ") {
				t.Errorf("generated file has no %s", name)
			}
		})
	}
	for name := range flagAliases {
		if _, ok := lookupKey(name); !ok {
			t.Errorf("alias for unknown key %q", name)
		}
	}
	for name := range retiredFlags {
		if seenFlag[name] {
			t.Errorf("retired flag %q is also a key flag", name)
		}
	}
	for name := range keyHelp {
		if _, ok := lookupKey(name); !ok {
			t.Errorf("help for unknown key %q", name)
		}
	}
}

// samples are distinct values of each kind, in the string form flags and
// environment variables take.
var samples = map[valueKind][]string{
	kindString:   {"alpha", "beta", "gamma"},
	kindBool:     {"true", "false"},
	kindInt:      {"7", "9", "11"},
	kindUint:     {"7", "9", "11"},
	kindSize:     {"3MiB", "5KiB", "123457"},
	kindDuration: {"7s", "9m", "11h"},
	kindList:     {"a:1,b:2", "c:3", "d:4,e:5,f:6"},
	kindRules: {
		`[{principal = "*", topics = ["*"], operations = ["consume"]}]`,
		`[{principal = "CN=x", topics = ["a-*"], operations = ["produce", "admin"]}]`,
		`[{principal = "anonymous", topics = ["t"], operations = ["*"]}]`,
	},
}

// valueOf parses a sample into a copy of the defaults and returns the
// field, for comparing.
func valueOf(t *testing.T, k *Key, s string) any {
	t.Helper()
	c := Default()
	if err := k.set(&c, s); err != nil {
		t.Fatalf("%s: sample %q: %v", k.Name, s, err)
	}
	return k.field(&c).Interface()
}

// fileWith writes a lance.toml setting one key to a sample value.
func fileWith(t *testing.T, k *Key, s string) string {
	t.Helper()
	c := Default()
	if err := k.set(&c, s); err != nil {
		t.Fatal(err)
	}
	var doc string
	if k.kind == kindRules {
		doc = "[acl]\nrules = " + rulesTOML(c.ACL.Rules) + "\n"
	} else {
		doc = "[" + k.Section + "]\n" + k.Field + " = " + k.tomlValue(&c) + "\n"
	}
	return writeTemp(t, doc)
}

// TestPrecedenceEveryKey checks, for every key, that the file, the
// environment and the flag each set it, and that flag > env > file >
// default holds pairwise.
func TestPrecedenceEveryKey(t *testing.T) {
	for _, key := range Keys() {
		k, _ := lookupKey(key.Name)
		t.Run(k.Name, func(t *testing.T) {
			def := Default()
			defVal := k.field(&def).Interface()
			// Two samples: lo differs from the default, hi differs from lo.
			var lo, hi string
			for _, s := range samples[k.kind] {
				v := valueOf(t, k, s)
				if lo == "" && !reflect.DeepEqual(v, defVal) {
					lo = s
				} else if lo != "" && hi == "" && !reflect.DeepEqual(v, valueOf(t, k, lo)) {
					hi = s
				}
			}
			if hi == "" {
				for _, s := range samples[k.kind] {
					if !reflect.DeepEqual(valueOf(t, k, s), valueOf(t, k, lo)) {
						hi = s
					}
				}
			}
			loVal, hiVal := valueOf(t, k, lo), valueOf(t, k, hi)
			env := func(m map[string]string) func(string) (string, bool) {
				return func(n string) (string, bool) { v, ok := m[n]; return v, ok }
			}
			get := func(args []string, e map[string]string) any {
				t.Helper()
				c, _, _, err := gather(args, env(e), nil)
				if err != nil {
					t.Fatalf("args %q env %v: %v", args, e, err)
				}
				return k.field(&c).Interface()
			}
			check := func(what string, got, want any) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %v, want %v", what, got, want)
				}
			}
			flagArg := "--" + k.Flag + "=" + lo
			fileLo := fileWith(t, k, lo)

			check("default", get(nil, nil), defVal)
			check("file", get([]string{"--config", fileLo}, nil), loVal)
			check("file via LANCE_CONFIG", get(nil, map[string]string{EnvConfig: fileLo}), loVal)
			check("env", get(nil, map[string]string{k.Env: lo}), loVal)
			check("flag", get([]string{flagArg}, nil), loVal)
			for _, a := range k.Aliases {
				check("alias "+a, get([]string{"-" + a + "=" + lo}, nil), loVal)
			}
			check("env over file", get([]string{"-c", fileLo}, map[string]string{k.Env: hi}), hiVal)
			check("flag over env", get([]string{"--" + k.Flag + "=" + hi}, map[string]string{k.Env: lo}), hiVal)
			check("flag over file", get([]string{"-c", fileLo, "--" + k.Flag + "=" + hi}, nil), hiVal)
			check("flag over env over file", get([]string{"-c", fileLo, "--" + k.Flag + "=" + hi}, map[string]string{k.Env: lo}), hiVal)
		})
	}
}

func TestSampleKindsCovered(t *testing.T) {
	for _, k := range Keys() {
		if len(samples[k.kind]) < 2 {
			t.Errorf("%s: no samples for its kind", k.Name)
		}
	}
	// The duration kind is what toml decodes natively; make sure the
	// samples mean what they say.
	k, _ := lookupKey("node.shutdown_grace")
	if got := valueOf(t, k, "9m"); got != 9*time.Minute {
		t.Fatalf("9m parsed as %v", got)
	}
}

// TestDocsListEveryKey keeps docs/configuration.md in step with the keys;
// it is skipped when the module is used outside its repository.
func TestDocsListEveryKey(t *testing.T) {
	raw, err := os.ReadFile("../../../docs/configuration.md")
	if err != nil {
		t.Skipf("docs not found: %v", err)
	}
	doc := string(raw)
	def := Default()
	for i := range allKeys() {
		k := &allKeys()[i]
		row := "| `" + k.Field + "` | `" + flagDisplay(k.Flag) + "`"
		if !strings.Contains(doc, row) || !strings.Contains(doc, "`"+k.Env+"`") || !strings.Contains(doc, k.Help) {
			t.Errorf("docs/configuration.md lacks the row of %s (flag, env and meaning)", k.Name)
		}
		if k.kind != kindRules && !strings.Contains(doc, "`"+k.Env+"` | `"+k.tomlValue(&def)+"`") {
			t.Errorf("docs/configuration.md shows a different default for %s", k.Name)
		}
	}
}
