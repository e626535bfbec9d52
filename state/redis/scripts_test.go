package redis

import (
	"io/fs"
	"strings"
	"testing"
)

// TestScriptsCarryTheHelpersTheyUse: every helper of the prelude that a
// compiled script names is defined in it, and the prelude is cut into
// definitions without losing a line of code.
func TestScriptsCarryTheHelpersTheyUse(t *testing.T) {
	p := parsePrelude(source("prelude"))
	names := map[string]bool{}
	var kept int
	for _, d := range p {
		names[d.name] = true
		kept += len(strings.Split(d.src, "\n"))
	}
	var code int
	for _, line := range strings.Split(source("prelude"), "\n") {
		if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "--") {
			code++
		}
	}
	if kept < code {
		t.Fatalf("the definitions hold %d lines, the prelude %d lines of code", kept, code)
	}
	files, err := fs.Glob(luaFS, "lua/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "lua/"), ".lua")
		if name == "prelude" {
			continue
		}
		helpers := p.For(source(name))
		defined := map[string]bool{}
		for _, d := range parsePrelude(helpers) {
			defined[d.name] = true
		}
		for _, id := range luaIdents(helpers + "\n" + source(name)) {
			if names[id] && !defined[id] {
				t.Errorf("%s uses %s without its definition", name, id)
			}
		}
	}
}
