package modgraph

import (
	"bufio"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const prefix = "github.com/lance-go/lance/"

// allowed maps each module (its path after prefix) to the sibling modules it
// may import. A module missing here may not exist: add it with its row of
// ARCHITECTURE.md when it is created.
var allowed = map[string][]string{
	"lnc-core":        {},
	"lnc-io":          {"lnc-core"},
	"lnc-network":     {"lnc-core"},
	"lnc-replication": {"lnc-core", "lnc-io", "lnc-network"},
	"lance":           {"lnc-core", "lnc-io", "lnc-network", "lnc-replication"},
	"lnc-client":      {"lnc-core", "lnc-network"},
	"lnc":             {"lnc-client", "lnc-core", "lnc-io", "lnc-network"},
	"lnc-bench":       {"lnc-client", "lnc-core", "lnc-network"},
	"lnc-chaos":       {"lnc-client", "lnc-core", "lnc-network"},
}

// repoRoot finds the directory holding go.work above this package.
func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.work above this module: built outside the repository")
		}
		dir = parent
	}
}

// workModules returns the module directories listed in go.work's use block.
func workModules(t *testing.T, root string) []string {
	data, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	inUse := false
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "use ("):
			inUse = true
		case inUse && line == ")":
			inUse = false
		case inUse && line != "" && !strings.HasPrefix(line, "//"):
			mods = append(mods, strings.TrimPrefix(filepath.Clean(line), "./"))
		case strings.HasPrefix(line, "use ") && !strings.HasSuffix(line, "("):
			mods = append(mods, strings.TrimPrefix(filepath.Clean(strings.TrimSpace(line[4:])), "./"))
		}
	}
	return mods
}

// siblingOf returns the module a lance-go import path belongs to, or "".
func siblingOf(path string) string {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return ""
	}
	mod, _, _ := strings.Cut(rest, "/")
	return mod
}

func TestModuleDirections(t *testing.T) {
	root := repoRoot(t)
	mods := workModules(t, root)
	if len(mods) == 0 {
		t.Fatal("go.work lists no modules")
	}
	for _, mod := range mods {
		may, known := allowed[mod]
		if !known {
			t.Errorf("module %s is not in ARCHITECTURE.md's table (add it to allowed with its directions)", mod)
			continue
		}
		checkGoMod(t, root, mod, may)
		checkImports(t, root, mod, may)
	}
}

// checkGoMod checks the module path, that every sibling it requires is
// allowed, and that each has a replace line, so the module also builds with
// GOWORK=off.
func checkGoMod(t *testing.T, root, mod string, may []string) {
	data, err := os.ReadFile(filepath.Join(root, mod, "go.mod"))
	if err != nil {
		t.Error(err)
		return
	}
	text := string(data)
	if !strings.Contains(text, "module "+prefix+mod+"\n") {
		t.Errorf("%s/go.mod: module path is not %s%s", mod, prefix, mod)
	}
	for _, field := range strings.Fields(text) {
		sib := siblingOf(field)
		if sib == "" || sib == mod {
			continue
		}
		if !slices.Contains(may, sib) {
			t.Errorf("%s/go.mod names %s, which %s may not depend on", mod, sib, mod)
		}
		if !strings.Contains(text, prefix+sib+" => ../"+sib) {
			t.Errorf("%s/go.mod requires %s without `replace %s%s => ../%s`", mod, sib, prefix, sib, sib)
		}
	}
}

// checkImports parses the imports of every Go file of the module, tests
// included, and rejects arrows that point the wrong way and imports of
// another module's cmd packages.
func checkImports(t *testing.T, root, mod string, may []string) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, mod), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			sib := siblingOf(p)
			if sib == "" || sib == mod {
				continue
			}
			rel, _ := filepath.Rel(root, path)
			if !slices.Contains(may, sib) {
				t.Errorf("%s imports %s: %s may not depend on %s", rel, p, mod, sib)
			}
			if strings.Contains(p+"/", "/cmd/") {
				t.Errorf("%s imports %s, a command of another module", rel, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestAllowedIsAcyclic guards the table itself.
func TestAllowedIsAcyclic(t *testing.T) {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var visit func(m string, path []string)
	visit = func(m string, path []string) {
		switch state[m] {
		case active:
			t.Fatalf("cycle: %v", append(path, m))
		case done:
			return
		}
		state[m] = active
		for _, d := range allowed[m] {
			if _, ok := allowed[d]; !ok {
				t.Fatalf("%s depends on unknown module %s", m, d)
			}
			visit(d, append(path, m))
		}
		state[m] = done
	}
	for m := range allowed {
		visit(m, nil)
	}
}
