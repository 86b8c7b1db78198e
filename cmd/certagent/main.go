// Command certagent is the certificate agent for Microsoft 365 backup: it puts a backup
// provider's new certificate on the customer's Entra ID app registration, safely and provably.
//
// main parses the command line and calls one run function; exit codes are decided in one
// place (exitCode), because scripts branch on them: 0 success, 1 failure (or, for inspect,
// "some file was rejected"), 2 usage error.
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
	"time"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	// run gets the arguments after the command name.
	run func(ctx context.Context, env *cmdEnv, args []string) error
}

// cmdEnv is what every command may use; tests replace its streams.
type cmdEnv struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// stdin answers questions (setup, store rebuild's confirmation); interactive reports
	// whether it is a terminal (nil: it is not).
	stdin       io.Reader
	interactive func() bool
	// now is the clock of checks that compare times (doctor); nil is time.Now.
	now func() time.Time
}

func (env *cmdEnv) clock() time.Time {
	if env.now != nil {
		return env.now()
	}
	return time.Now()
}

// usageError is a mistake on the command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// exitError carries an explicit exit code with an optional message (exit 1 for "a file was
// rejected" is an answer, not a failure to report).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

var commands []command

func init() {
	commands = []command{
		{"run", "run the agent in the foreground (the service runs exactly this)", runRun},
		{"status", "ask the running agent for its status (exit 0 healthy, 1 problems, 2 unreachable)", runStatus},
		{"rotations", "list, show, approve, reject, confirm or retry rotations of the running agent", runRotations},
		{"submit", "send certificate files to the running agent, as the drop folder would take them", runSubmit},
		{"doctor", "check config, folders, store, clock, Graph and permissions; the fix for each", runDoctor},
		{"store", "the state store: store check|rebuild", runStore},
		{"audit", "the audit trail: audit verify (the hash chain, end to end)", runAudit},
		{"inspect", "print the verdict the agent would give each certificate file", runInspect},
		{"config", "validate a config file: config check [-c FILE]", runConfig},
		{"credential", "the agent's own sign-in credential: credential init|show|rotate", runCredential},
		{"setup", "the one-time tenant work as an administrator: the agent's app, permission, ownership, key, config", runSetup},
		{"dev", "run the whole product locally against an emulated tenant", runDev},
		{"emulator", "run the emulated Entra ID tenant and Graph alone", runEmulator},
		{"version", "print version, commit and Go version", runVersion},
	}
	commands = append(commands, serviceCommands()...)
	sort.Slice(commands, func(i, j int) bool { return commands[i].name < commands[j].name })
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &cmdEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, stdin: os.Stdin, interactive: stdinIsTerminal}
	err := dispatch(ctx, env, os.Args[1:])
	stop()
	os.Exit(exitCode(env, err))
}

// dispatch finds the command and runs it.
func dispatch(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		printUsage(env.stderr)
		return usagef("no command given")
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		printUsage(env.stdout)
		return nil
	case "-v", "--version":
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, env, args[1:])
		}
	}
	printUsage(env.stderr)
	return usagef("unknown command %q", name)
}

// exitCode prints err (if any) and maps it to the process exit code.
func exitCode(env *cmdEnv, err error) int {
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(env.stderr, "certagent: %s\n", ue.msg)
		return 2
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintf(env.stderr, "certagent: %s\n", ee.msg)
		}
		return ee.code
	case errors.Is(err, context.Canceled):
		return 0
	default:
		fmt.Fprintf(env.stderr, "certagent: %s\n", err)
		return 1
	}
}

// stdinIsTerminal reports whether standard input is a terminal (a character device: a
// console, or /dev/null, where reading the answer finds nothing, which is a no).
func stdinIsTerminal() bool {
	fi, err := os.Stdin.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: certagent <command> [options]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'certagent <command> -h' for a command's options.")
}

// newFlags returns a flag set that reports problems as usage errors instead of exiting.
func newFlags(env *cmdEnv, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: certagent %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// (certagent inspect a.cer --json), and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
