package content

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	tests := []struct {
		p  string
		ok bool
	}{
		{"a", true},
		{"a/b/c.txt", true},
		{"..a/b..", true},
		{".hidden", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../a", false},
		{"a/..", false},
		{"a/../b", false},
		{"/a", false},
		{"a//b", false},
		{"a/", false},
		{"./a", false},
		{"a/./b", false},
		{`a\..\b`, false},
		{"a\x00b", false},
		{"\xff", false},
		{strings.Repeat("a", MaxPathLen+1), false},
	}
	for _, tc := range tests {
		err := CheckPath(tc.p)
		if (err == nil) != tc.ok {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", tc.p, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafePath) {
			t.Errorf("CheckPath(%q) = %v, not ErrUnsafePath", tc.p, err)
		}
	}
}

func TestCheckSymlink(t *testing.T) {
	tests := []struct {
		link, target string
		ok           bool
	}{
		{"l", "a", true},
		{"l", ".", true},
		{"d/l", "..", true},
		{"d/l", "../x", true},
		{"d/e/l", "../../x", true},
		{"l", "..", false},
		{"l", "../x", false},
		{"d/l", "../../x", false},
		{"l", "/etc/passwd", false},
		{"l", "a/..", false},
		{"l", "a/../..", false},
		{"l", "d/../../x", false},
		{"l", "", false},
		{"l", "a//b", false},
		{"../l", "a", false},
	}
	for _, tc := range tests {
		err := CheckSymlink(tc.link, tc.target)
		if (err == nil) != tc.ok {
			t.Errorf("CheckSymlink(%q, %q) = %v, want ok=%v", tc.link, tc.target, err, tc.ok)
		}
	}
}

// FuzzCheckPath checks the property the install relies on: an accepted
// path joined to any directory stays strictly inside it.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a/../../b", "/x", "a//b", ".", "..a", "a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath(p) != nil {
			return
		}
		root := "/install/dir"
		j := filepath.Join(root, filepath.FromSlash(p))
		if !strings.HasPrefix(j, root+"/") {
			t.Fatalf("CheckPath accepted %q, which joins to %q", p, j)
		}
		if rel, err := filepath.Rel(root, j); err != nil || filepath.ToSlash(rel) != p {
			t.Fatalf("CheckPath accepted non-canonical %q (rel %q)", p, rel)
		}
	})
}

// FuzzCheckSymlink checks that an accepted link resolves inside the tree.
func FuzzCheckSymlink(f *testing.F) {
	for _, s := range [][2]string{{"l", "a"}, {"d/l", "../x"}, {"l", "../x"}, {"d/e/l", "../../.."}, {"l", "a/.."}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, link, target string) {
		if CheckSymlink(link, target) != nil {
			return
		}
		root := "/install/dir"
		res := filepath.Join(root, filepath.FromSlash(link), "..", filepath.FromSlash(target))
		if res != root && !strings.HasPrefix(res, root+"/") {
			t.Fatalf("CheckSymlink accepted %q -> %q, which resolves to %q", link, target, res)
		}
		for _, el := range strings.Split(target, "/") {
			if el == "." && target != "." {
				t.Fatalf("accepted target %q with a '.' element", target)
			}
		}
	})
}
