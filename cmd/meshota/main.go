// Command meshota is the one binary of meshota: publisher tools, the seed
// node, the device agent, the simulator and the demo. Each subcommand lives
// in its own file and registers itself in commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. Run gets the arguments after the command's name
// and a context cancelled on SIGINT/SIGTERM.
type command struct {
	Name    string
	Summary string
	Usage   string // the full --help text, with examples
	Run     func(ctx context.Context, env *env, args []string) error
}

// env carries the process's streams so commands are testable in-process.
type env struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.Name]; dup {
		panic("duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

// errUsage marks a usage error: exit code 2 and the usage text.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.Stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.Stderr, "meshota: unknown command %q; run 'meshota help' for the list\n", args[0])
		return 2
	}
	err := c.Run(ctx, e, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.Stderr, "meshota %s: %v\n\n%s\n", c.Name, err, c.Usage)
		return 2
	default:
		fmt.Fprintf(e.Stderr, "meshota %s: %v\n", c.Name, err)
		return 1
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "meshota distributes encrypted, signed software updates over a peer-to-peer mesh.")
	fmt.Fprintln(w, "\nUsage: meshota <command> [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(w, "\nRun 'meshota <command> --help' for a command's flags and examples.")
}

// newFlagSet returns a FlagSet that prints c's usage on --help and returns
// errors instead of exiting.
func newFlagSet(c *command, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("meshota "+c.Name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.Stderr, c.Usage)
		fmt.Fprintln(e.Stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags wherever they stand among the positional
// arguments (meshota publish ... PATH --seed ADDR), as users of git and
// kubectl expect; "--" ends flag parsing. Afterwards fs.Args() holds the
// positional arguments in order.
func parseArgs(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...) // everything after "--" is positional
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}
