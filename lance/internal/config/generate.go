package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

const templateHeader = `# lance.toml: configuration of the LANCE server.
#
# Every key is listed with its meaning, its flag and its environment
# variable. Precedence: flags > LANCE_* environment variables > this file >
# built-in defaults. Sizes are a byte count or a string with a binary unit
# ("256KiB", "64MiB", "1GiB"); durations are strings with a unit ("25s",
# "5m"). Unknown keys are errors, so a misspelt key cannot be ignored.
`

// Marshal writes c as a commented lance.toml that DecodeTOML reads back to
// the same Config. With no ACL rules it writes a commented-out example
// rule instead.
func Marshal(c Config) []byte {
	var b strings.Builder
	b.WriteString(templateHeader)
	section := ""
	for i := range allKeys() {
		k := &allKeys()[i]
		if k.Section != section {
			if section == "acl" {
				writeRules(&b, c.ACL.Rules)
			}
			section = k.Section
			fmt.Fprintf(&b, "\n[%s]\n", section)
		}
		if k.kind == kindRules {
			continue // written as [[acl.rules]] tables at the end of [acl]
		}
		flags := []string{flagDisplay(k.Flag)}
		for _, a := range k.Aliases {
			flags = append(flags, flagDisplay(a))
		}
		fmt.Fprintf(&b, "\n# %s\n# flag %s, env %s\n%s = %s\n", k.Help, strings.Join(flags, " "), k.Env, k.Field, k.tomlValue(&c))
	}
	if section == "acl" {
		writeRules(&b, c.ACL.Rules)
	}
	return []byte(b.String())
}

func writeRules(b *strings.Builder, rules []ACLRule) {
	k, _ := lookupKey("acl.rules")
	fmt.Fprintf(b, "\n# rules: %s.\n", k.Help)
	b.WriteString("# A rule grants operations (produce, consume, admin, describe or *) on topics (names,\n")
	b.WriteString("# prefixes ending in *, or *) to a principal (\"CN=<certificate name>\",\n")
	b.WriteString("# \"token:<name>\", \"anonymous\" or \"*\"). Requests no rule allows get acl.default.\n")
	fmt.Fprintf(b, "# flag %s, env %s\n", flagDisplay(k.Flag), k.Env)
	if len(rules) == 0 {
		b.WriteString("# Example (remove the leading \"# \" to use it):\n")
		b.WriteString("#\n# [[acl.rules]]\n# principal = \"CN=ingest\"\n# topics = [\"orders-*\"]\n# operations = [\"produce\"]\n")
		return
	}
	for _, r := range rules {
		fmt.Fprintf(b, "\n[[acl.rules]]\nprincipal = %s\ntopics = %s\noperations = %s\n",
			tomlString(r.Principal), tomlStrings(r.Topics), tomlStrings(r.Operations))
	}
}

// tomlValue writes the key's value as a TOML value.
func (k *Key) tomlValue(c *Config) string {
	f := k.field(c)
	switch k.kind {
	case kindString:
		return tomlString(f.String())
	case kindSize:
		s := ByteSize(f.Int()).String()
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return s
		}
		return tomlString(s)
	case kindDuration:
		return tomlString(k.format(c))
	case kindList:
		return tomlStrings(f.Interface().([]string))
	}
	return k.format(c)
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlStrings(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = tomlString(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// WriteTemplate writes Marshal(Default()) to path, or to stdout when path
// is "-". It never overwrites: an existing path is an error wrapping
// fs.ErrExist.
func WriteTemplate(path string, stdout io.Writer) error {
	data := Marshal(Default())
	if path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("gen-config: %w (an existing file is never overwritten; remove it or choose another name)", err)
		}
		return fmt.Errorf("gen-config: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(fmt.Errorf("gen-config: %w", err), os.Remove(path))
	}
	return nil
}
