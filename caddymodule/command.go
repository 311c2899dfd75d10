package caddymodule

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// `caddy authgate ...`: administration. Every command is a request to the
// admin routes (internal/admin, mounted by adminapi.go) made with an
// admin.Client (adminclient.go): by default to the running server's admin
// endpoint, so it takes effect on the next request without a restart; with
// --db <path> to the same routes served in-process on the file opened
// directly, for a stopped server. The commands are split by what they
// manage: command_user.go, command_key.go, command_store.go.

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "authgate",
		Usage: "user|key|session|lockout|signing-key|backup|import|migrate|version ...",
		Short: "Manages authgate users, API keys, sessions and signing keys",
		Long: `
Manages the authgate store: users (and their locks), API keys, sessions,
signing keys, backups and imports.

By default a command goes to the running server's admin endpoint, found
as ` + "`caddy reload`" + ` finds it (--address, else the admin address of
--config or of a Caddyfile in the current directory, else localhost:2019),
and takes effect on the next request. With --db <path> it opens the store
file directly instead, which needs the server stopped; a path that names
no file is refused unless --create is given. An unknown command or flag
exits non-zero.
`,
		CobraFunc: authgateCommand,
	})
}

// authgateCommand fills in `caddy authgate`: its flags and subcommands.
func authgateCommand(cmd *cobra.Command) {
	addClientFlags(cmd)
	cmd.AddCommand(userCommand(), keyCommand(), sessionCommand(), lockoutCommand(), signingKeyCommand(), backupCommand(), importCommand(), migrateCommand(), versionCommand())
	groups(cmd)
}

// versionCommand prints authgate's version (see Version).
func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Prints authgate's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "authgate", Version())
			return nil
		},
	}
}

// groups makes every command of the tree that only holds subcommands
// refuse anything else. Cobra runs no such command: it prints its help and
// exits 0 whatever follows, so `caddy authgate key lst` looked like it
// worked. Run bare, a group still prints its help.
func groups(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = unknownSubcommand
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only where it suggests itself
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	for _, sub := range cmd.Commands() {
		groups(sub)
	}
}

// unknownSubcommand is the Args of a group: no argument is a subcommand it
// has (cobra found those), so any is an error, with cobra's suggestions.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return fmt.Errorf("%s\nRun '%s --help' for its commands", msg, cmd.CommandPath())
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readSecret reads a password or PIN from standard input (with the flag) or
// prompts twice on the terminal without echo.
func readSecret(cmd *cobra.Command, stdinFlag, prompt string) (string, error) {
	if fromStdin, _ := cmd.Flags().GetBool(stdinFlag); fromStdin {
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("standard input was empty")
		}
		return line, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", fmt.Errorf("standard input is not a terminal: use --%s", stdinFlag)
	}
	fmt.Fprint(os.Stderr, prompt+": ")
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(os.Stderr, "Again: ")
	second, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	if string(first) != string(second) {
		return "", errors.New("the two entries differ")
	}
	if len(first) == 0 {
		return "", errors.New("nothing was entered")
	}
	return string(first), nil
}

// stdinIsTerminal reports whether standard input is a terminal; tests
// swap it.
var stdinIsTerminal = func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// confirm asks question on the terminal and goes ahead only on "y" or
// "yes". Without a terminal nobody can answer, so it refuses: a script
// says --yes instead.
func confirm(cmd *cobra.Command, question string) error {
	if !stdinIsTerminal() {
		return errors.New("standard input is not a terminal, so nobody can confirm: pass --yes to go ahead without asking")
	}
	fmt.Fprint(cmd.ErrOrStderr(), question+" [y/N] ")
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed: nothing was changed")
}

// printOut prints v as JSON with --json, else as an aligned table.
func printOut(cmd *cobra.Command, v any, table func(w io.Writer)) error {
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func state(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}
