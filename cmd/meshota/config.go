package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/BurntSushi/toml"
)

// applyConfig sets every flag named in the TOML file at path that was not
// given on the command line: flags override the file. Keys are flag names;
// a repeatable flag takes an array. Unknown keys are errors.
func applyConfig(fs *flag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var m map[string]any
	if err := toml.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || fs.Lookup(k) == nil {
			return fmt.Errorf("config %s: unknown key %q (keys are the command's flag names)", path, k)
		}
		if given[k] {
			continue
		}
		values := []any{m[k]}
		if list, ok := m[k].([]any); ok {
			values = list
		}
		for _, v := range values {
			if err := fs.Set(k, fmt.Sprint(v)); err != nil {
				return fmt.Errorf("config %s: %s: %w", path, k, err)
			}
		}
	}
	return nil
}
