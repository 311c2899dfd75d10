package caddymodule

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/authgate/authgate/store"
)

// `caddy authgate ...`: administration of users and API keys. Every
// command works on the bbolt file directly (--db, default the app's default
// path) while no server holds it.

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "authgate",
		Usage: "user|key ...",
		Short: "Manages authgate users and API keys",
		Long: `
Manages the users and API keys of the authgate store.

The commands open the store file directly (--db, default
authgate/authgate.db in Caddy's data directory), which works while no
Caddy server holds it; a running server's lock is reported clearly.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().String("db", "", "path of the store file (default: authgate/authgate.db in Caddy's data directory)")
			cmd.AddCommand(userCommand(), keyCommand())
		},
	})
}

func userCommand() *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manages users"}

	add := &cobra.Command{
		Use:   "add <username> [--password-stdin] [--roles a,b] [--email E]",
		Short: "Adds a user",
		Args:  cobra.ExactArgs(1),
		RunE: withOps(func(cmd *cobra.Command, ops adminOps, args []string) error {
			pw, err := readSecret(cmd, "password-stdin", "Password")
			if err != nil {
				return err
			}
			roles, _ := cmd.Flags().GetStringSlice("roles")
			email, _ := cmd.Flags().GetString("email")
			v, err := ops.addUser(addUserRequest{Username: args[0], Password: pw, Email: email, Roles: roles})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added user %s (%s)\n", v.Username, v.ID)
			return nil
		}),
	}
	add.Flags().Bool("password-stdin", false, "read the password from standard input")
	add.Flags().StringSlice("roles", nil, "comma-separated roles")
	add.Flags().String("email", "", "email address (also usable to log in)")

	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "Lists users",
		Args:  cobra.NoArgs,
		RunE: withOps(func(cmd *cobra.Command, ops adminOps, _ []string) error {
			users, err := ops.listUsers()
			if err != nil {
				return err
			}
			return printOut(cmd, users, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tUSERNAME\tEMAIL\tROLES\tSTATE")
				for _, u := range users {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.Email, strings.Join(u.Roles, ","), state(u.Disabled, "disabled", "enabled"))
				}
			})
		}),
	}

	show := &cobra.Command{
		Use:   "show <username> [--json]",
		Short: "Shows one user",
		Args:  cobra.ExactArgs(1),
		RunE: withOps(func(cmd *cobra.Command, ops adminOps, args []string) error {
			u, err := ops.showUser(args[0])
			if err != nil {
				return err
			}
			return printOut(cmd, u, func(w io.Writer) {
				fmt.Fprintf(w, "id\t%s\nusername\t%s\nemail\t%s\nroles\t%s\nstate\t%s\npin\t%s\ncreated\t%s\nlast login\t%s\n",
					u.ID, u.Username, u.Email, strings.Join(u.Roles, ","), state(u.Disabled, "disabled", "enabled"),
					state(u.HasPIN, "set", "not set"), u.CreatedAt.Format(time.RFC3339), formatTime(u.LastLogIn))
			})
		}),
	}

	setState := func(use, short string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " <username>",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: withOps(func(cmd *cobra.Command, ops adminOps, args []string) error {
				v, err := ops.setDisabled(args[0], disabled)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s %s\n", v.Username, state(disabled, "disabled", "enabled"))
				return nil
			}),
		}
	}

	del := &cobra.Command{
		Use:   "delete <username>",
		Short: "Deletes a user with their API keys and sessions",
		Args:  cobra.ExactArgs(1),
		RunE: withOps(func(cmd *cobra.Command, ops adminOps, args []string) error {
			if err := ops.deleteUser(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted user %s\n", args[0])
			return nil
		}),
	}

	passwd := &cobra.Command{
		Use:   "passwd <username> [--password-stdin]",
		Short: "Sets a user's password; their existing sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: withOps(func(cmd *cobra.Command, ops adminOps, args []string) error {
			pw, err := readSecret(cmd, "password-stdin", "New password")
			if err != nil {
				return err
			}
			v, err := ops.setPassword(args[0], pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed; their sessions were revoked\n", v.Username)
			return nil
		}),
	}
	passwd.Flags().Bool("password-stdin", false, "read the password from standard input")

	for _, c := range []*cobra.Command{list, show} {
		c.Flags().Bool("json", false, "print JSON")
	}
	user.AddCommand(add, list, show, setState("disable", "Disables a user: logins, tokens and keys stop working", true),
		setState("enable", "Enables a user", false), del, passwd)
	return user
}

func keyCommand() *cobra.Command {
	key := &cobra.Command{Use: "key", Short: "Manages API keys"}

	create := &cobra.Command{
		Use:   "create --user <u> --name <n> [--permissions read,write,create,delete] [--expires 720h] [--client-secret] [--json]",
		Short: "Creates an API key; the key is printed once",
		Args:  cobra.NoArgs,
		RunE: withOps(func(cmd *cobra.Command, ops adminOps, _ []string) error {
			f := cmd.Flags()
			var req createKeyRequest
			req.User, _ = f.GetString("user")
			req.Name, _ = f.GetString("name")
			req.Permissions, _ = f.GetString("permissions")
			req.ClientSecret, _ = f.GetBool("client-secret")
			req.Description, _ = f.GetString("description")
			if req.User == "" || req.Name == "" {
				return errors.New("--user and --name are required")
			}
			if exp, _ := f.GetString("expires"); exp != "" {
				d, err := caddy.ParseDuration(exp)
				if err != nil || d <= 0 {
					return fmt.Errorf("--expires %q: want a positive duration like 720h", exp)
				}
				req.ExpiresIn = d
			}
			k, err := ops.createKey(req)
			if err != nil {
				return err
			}
			return printOut(cmd, k, func(w io.Writer) {
				fmt.Fprintf(w, "id\t%s\nuser\t%s\npermissions\t%s\nexpires\t%s\nkey\t%s\n", k.ID, k.Owner, k.Permissions, formatTime(k.ExpiresAt), k.Key)
				if k.ClientSecret != "" {
					fmt.Fprintf(w, "client secret\t%s\n", k.ClientSecret)
				}
				fmt.Fprintln(w, "\nThis is the only time the key is shown: store it now.")
			})
		}),
	}
	cf := create.Flags()
	cf.String("user", "", "owner of the key (username, email or id)")
	cf.String("name", "", "a name for the key")
	cf.String("permissions", "read,write,delete,create", "comma-separated: read, write, delete, create (or all)")
	cf.String("expires", "", "lifetime, e.g. 720h (default: never)")
	cf.Bool("client-secret", false, "also issue a client secret (for quick_login)")
	cf.String("description", "", "a description")
	cf.Bool("json", false, "print JSON")

	list := &cobra.Command{
		Use:   "list [--user <u>] [--json]",
		Short: "Lists API keys (masked)",
		Args:  cobra.NoArgs,
		RunE: withOps(func(cmd *cobra.Command, ops adminOps, _ []string) error {
			user, _ := cmd.Flags().GetString("user")
			keys, err := ops.listKeys(user)
			if err != nil {
				return err
			}
			return printOut(cmd, keys, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tNAME\tUSER\tPERMISSIONS\tKEY\tEXPIRES\tSTATE")
				for _, k := range keys {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Owner, k.Permissions, k.Hint, formatTime(k.ExpiresAt), state(k.Revoked, "revoked", "active"))
				}
			})
		}),
	}
	list.Flags().String("user", "", "only this user's keys")
	list.Flags().Bool("json", false, "print JSON")

	revoke := &cobra.Command{
		Use:   "revoke <id>",
		Short: "Revokes an API key",
		Args:  cobra.ExactArgs(1),
		RunE: withOps(func(cmd *cobra.Command, ops adminOps, args []string) error {
			if err := ops.revokeKey(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked key %s\n", args[0])
			return nil
		}),
	}

	key.AddCommand(create, list, revoke)
	return key
}

// withOps opens the store for the duration of one command.
func withOps(run func(cmd *cobra.Command, ops adminOps, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		path, _ := cmd.Flags().GetString("db")
		if path == "" {
			path = filepath.Join(caddy.AppDataDir(), "authgate", "authgate.db")
		}
		st, err := store.Open(path, store.Options{})
		if err != nil {
			if errors.Is(err, store.ErrLocked) {
				return fmt.Errorf("%w: stop the server first", err)
			}
			return err
		}
		defer st.Close()
		return run(cmd, adminOps{st: st, now: time.Now}, args)
	}
}

// readSecret reads a password from standard input (with the flag) or
// prompts twice on the terminal without echo.
func readSecret(cmd *cobra.Command, stdinFlag, prompt string) (string, error) {
	if fromStdin, _ := cmd.Flags().GetBool(stdinFlag); fromStdin {
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("standard input held no password")
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
		return "", errors.New("empty password")
	}
	return string(first), nil
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
