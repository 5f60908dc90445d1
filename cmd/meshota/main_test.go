package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), &env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("")}, args)
	return out.String(), errb.String(), code
}

func TestUnknownCommand(t *testing.T) {
	_, stderr, code := runCLI(t, "frobnicate")
	if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "meshota ") {
		t.Fatalf("code %d, stdout %q", code, stdout)
	}
}

func TestDemoRuns(t *testing.T) {
	stdout, stderr, code := runCLI(t, "demo", "--devices", "4", "--size", "1048576")
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"every device installed and verified it", "1.1.0", "every device runs 1.0.0 again", "demo passed"} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	t.Log(stdout)
}

func TestParseArgsInterleaved(t *testing.T) {
	cases := []struct {
		args    []string
		seed    string
		verbose bool
		pos     []string
	}{
		{[]string{"PATH", "--seed", "a:1"}, "a:1", false, []string{"PATH"}},
		{[]string{"--seed", "a:1", "P1", "-v", "P2"}, "a:1", true, []string{"P1", "P2"}},
		{[]string{"P1", "--", "--seed", "x"}, "", false, []string{"P1", "--seed", "x"}},
		{[]string{}, "", false, nil},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		seed := fs.String("seed", "", "")
		v := fs.Bool("v", false, "")
		if err := parseArgs(fs, c.args); err != nil {
			t.Fatal(err)
		}
		if *seed != c.seed || *v != c.verbose || fmt.Sprint(fs.Args()) != fmt.Sprint(c.pos) {
			t.Errorf("%q: seed %q v %v args %q", c.args, *seed, *v, fs.Args())
		}
	}
}

func TestProgressPlainLines(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "publishing", 1000)
	for _, n := range []uint64{100, 260, 500, 510, 990, 1000} {
		p.update(n)
	}
	p.done()
	want := "publishing: 25% (260 B of 1000 B)\npublishing: 50% (500 B of 1000 B)\npublishing: 75% (990 B of 1000 B)\npublishing: 100% (1000 B of 1000 B)\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
