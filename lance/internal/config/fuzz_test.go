package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzLoadTOML feeds arbitrary bytes as lance.toml. Decoding, normalizing
// and validating never panic, and whatever decodes is written back by
// Marshal to a file that decodes to the same Config.
func FuzzLoadTOML(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.toml")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(Marshal(Default()))
	f.Add([]byte("[io]\nbatch_size = \"99999999999TiB\"\n"))
	f.Add([]byte("[[acl.rules]]\nprincipal = \"*\"\n[[acl.rules]]\ntopics = []\n"))
	f.Add([]byte("[node]\nshutdown_grace = 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeTOML(data, Default())
		if err != nil {
			return
		}
		out := Marshal(c)
		back, err := DecodeTOML(out, Default())
		if err != nil {
			t.Fatalf("Marshal output does not decode: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip differs:\n%+v\n%+v", back, c)
		}
		c.Normalize()
		_ = c.Validate()
		_ = (&c).Clone()
	})
}
