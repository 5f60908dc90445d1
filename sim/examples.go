package sim

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed scenarios/*.toml
var examples embed.FS

// Examples lists the scenarios that ship with meshota, by name.
func Examples() []string {
	entries, _ := fs.ReadDir(examples, "scenarios")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(names)
	return names
}

// Example returns the text of a shipped scenario.
func Example(name string) ([]byte, bool) {
	data, err := fs.ReadFile(examples, "scenarios/"+name+".toml")
	return data, err == nil
}
