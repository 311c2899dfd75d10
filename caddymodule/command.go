package caddymodule

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// `caddy authgate ...`: administration. Every command is a request to the
// admin API (adminapi.go): by default to the running server's admin
// endpoint, so it takes effect on the next request without a restart; with
// --db <path> to the same routes served in-process on the file opened
// directly, for a stopped server.

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "authgate",
		Usage: "user|key|session|signing-key|backup|import ...",
		Short: "Manages authgate users, API keys, sessions and signing keys",
		Long: `
Manages the authgate store: users, API keys, sessions, signing keys,
backups and imports.

By default a command goes to the running server's admin endpoint, found
as ` + "`caddy reload`" + ` finds it (--address, else the admin address of
--config or of a Caddyfile in the current directory, else localhost:2019),
and takes effect on the next request. With --db <path> it opens the store
file directly instead, which needs the server stopped.
`,
		CobraFunc: func(cmd *cobra.Command) {
			addClientFlags(cmd)
			cmd.AddCommand(userCommand(), keyCommand(), sessionCommand(), signingKeyCommand(), backupCommand(), importCommand())
		},
	})
}

func userCommand() *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manages users"}

	add := &cobra.Command{
		Use:   "add <username> [--password-stdin] [--roles a,b] [--email E]",
		Short: "Adds a user",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
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
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, _ []string) error {
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
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
			u, err := ops.showUser(args[0])
			if err != nil {
				return err
			}
			return printUser(cmd, u)
		}),
	}

	setState := func(use, short string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " <username>",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
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
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
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
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
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

	setPIN := &cobra.Command{
		Use:   "set-pin <username> [--pin-stdin]",
		Short: "Sets a user's PIN (for check_pin); their sessions go on",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
			pin, err := readSecret(cmd, "pin-stdin", "New PIN")
			if err != nil {
				return err
			}
			v, err := ops.setPIN(args[0], pin)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "PIN of %s set\n", v.Username)
			return nil
		}),
	}
	setPIN.Flags().Bool("pin-stdin", false, "read the PIN from standard input")

	for _, c := range []*cobra.Command{list, show} {
		c.Flags().Bool("json", false, "print JSON")
	}
	user.AddCommand(add, list, show, setState("disable", "Disables a user: logins, tokens and keys stop working", true),
		setState("enable", "Enables a user", false), del, passwd, setPIN, userSetCommand(), settingCommand())
	return user
}

// profileFlags are the text flags of `user set`, each with the field of
// userChanges it sets.
var profileFlags = []struct {
	name, usage string
	field       func(c *userChanges) **string
}{
	{"email", "email address (also a login; \"\" removes it)", func(c *userChanges) **string { return &c.Email }},
	{"first-name", "first name", func(c *userChanges) **string { return &c.FirstName }},
	{"last-name", "last name", func(c *userChanges) **string { return &c.LastName }},
	{"title", "title", func(c *userChanges) **string { return &c.Title }},
	{"phone", "phone number", func(c *userChanges) **string { return &c.PhoneNumber }},
	{"mobile", "mobile number", func(c *userChanges) **string { return &c.Mobile }},
	{"department", "department", func(c *userChanges) **string { return &c.Department }},
	{"birth-date", "birth date, YYYY-MM-DD", func(c *userChanges) **string { return &c.BirthDate }},
	{"image", "image (a URL)", func(c *userChanges) **string { return &c.Image }},
	{"address", "street address", func(c *userChanges) **string { return &c.Address }},
	{"postal-code", "postal code", func(c *userChanges) **string { return &c.PostalCode }},
	{"region", "region", func(c *userChanges) **string { return &c.Region }},
	{"city", "city", func(c *userChanges) **string { return &c.City }},
	{"country", "country", func(c *userChanges) **string { return &c.Country }},
	{"country-code", "country code, e.g. DE", func(c *userChanges) **string { return &c.CountryCode }},
	{"notes", "notes", func(c *userChanges) **string { return &c.Notes }},
	{"customer-id", "customer id", func(c *userChanges) **string { return &c.CustomerID }},
	{"lang", "language, e.g. de or en-GB", func(c *userChanges) **string { return &c.Lang }},
	{"timezone", "IANA time zone, e.g. Europe/Berlin", func(c *userChanges) **string { return &c.Timezone }},
}

func userSetCommand() *cobra.Command {
	set := &cobra.Command{
		Use:   "set <username> [--email E] [--first-name F] [--last-name L] [--lang de] [--timezone Europe/Berlin] [--rank N] [--roles a,b] [--session-limit N] [...] [--json]",
		Short: "Changes a user's profile: only the fields given",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
			f := cmd.Flags()
			var c userChanges
			for _, pf := range profileFlags {
				if f.Changed(pf.name) {
					v, _ := f.GetString(pf.name)
					*pf.field(&c) = &v
				}
			}
			if f.Changed("rank") {
				n, _ := f.GetInt("rank")
				c.Rank = &n
			}
			if f.Changed("session-limit") {
				n, _ := f.GetInt("session-limit")
				c.SessionLimit = &n
			}
			if f.Changed("roles") {
				roles, _ := f.GetStringSlice("roles")
				c.Roles = &roles
			}
			v, err := ops.setProfile(args[0], c)
			if err != nil {
				return err
			}
			return printUser(cmd, v)
		}),
	}
	f := set.Flags()
	for _, pf := range profileFlags {
		f.String(pf.name, "", pf.usage)
	}
	f.Int("rank", 0, "rank")
	f.StringSlice("roles", nil, "comma-separated roles, replacing the current ones (\"\" removes all)")
	f.Int("session-limit", 0, "live sessions allowed (0: the gateway's session_limit)")
	f.Bool("json", false, "print JSON")
	return set
}

func settingCommand() *cobra.Command {
	setting := &cobra.Command{Use: "setting", Short: "Manages a user's settings"}

	set := &cobra.Command{
		Use:   "set <username> <name> <value> [--category C] [--group G] [--type T] [--description D] [--read-only[=false]] [--json]",
		Short: "Creates a setting, or updates the one of that name",
		Args:  cobra.ExactArgs(3),
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
			f := cmd.Flags()
			req := settingRequest{Name: args[1], Value: args[2]}
			for name, dst := range map[string]**string{"category": &req.Category, "group": &req.Group, "type": &req.Type, "description": &req.Description} {
				if f.Changed(name) {
					v, _ := f.GetString(name)
					*dst = &v
				}
			}
			if f.Changed("read-only") {
				ro, _ := f.GetBool("read-only")
				req.ReadOnly = &ro
			}
			s, err := ops.setSetting(args[0], req)
			if err != nil {
				return err
			}
			return printOut(cmd, s, func(w io.Writer) {
				fmt.Fprintf(w, "id\t%d\nname\t%s\nvalue\t%s\ncategory\t%s\ngroup\t%s\ntype\t%s\ndescription\t%s\nread-only\t%t\n",
					s.ID, s.Name, s.Value, s.Category, s.Group, s.Type, s.Description, s.ReadOnly)
			})
		}),
	}
	sf := set.Flags()
	sf.String("category", "", "category")
	sf.String("group", "", "group")
	sf.String("type", "", "type, e.g. string or bool")
	sf.String("description", "", "description")
	sf.Bool("read-only", false, "the user may not change it through the Babel API")
	sf.Bool("json", false, "print JSON")

	del := &cobra.Command{
		Use:   "delete <username> <name>",
		Short: "Deletes a setting",
		Args:  cobra.ExactArgs(2),
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
			if err := ops.deleteSetting(args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted setting %q of %s\n", args[1], args[0])
			return nil
		}),
	}

	list := &cobra.Command{
		Use:   "list <username> [--json]",
		Short: "Lists a user's settings",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
			settings, err := ops.listSettings(args[0])
			if err != nil {
				return err
			}
			return printOut(cmd, settings, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tCATEGORY\tGROUP\tNAME\tVALUE\tTYPE\tREAD-ONLY")
				for _, s := range settings {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%t\n", s.ID, s.Category, s.Group, s.Name, s.Value, s.Type, s.ReadOnly)
				}
			})
		}),
	}
	list.Flags().Bool("json", false, "print JSON")

	setting.AddCommand(set, del, list)
	return setting
}

// printUser prints a user as `user show` does: the profile fields that are
// set, never a hash.
func printUser(cmd *cobra.Command, u userView) error {
	return printOut(cmd, u, func(w io.Writer) {
		fmt.Fprintf(w, "id\t%s\nusername\t%s\nemail\t%s\nroles\t%s\nstate\t%s\npin\t%s\n",
			u.ID, u.Username, u.Email, strings.Join(u.Roles, ","), state(u.Disabled, "disabled", "enabled"),
			state(u.HasPIN, "set", "not set"))
		for _, row := range [][2]string{
			{"first name", u.FirstName}, {"last name", u.LastName}, {"title", u.Title},
			{"phone", u.PhoneNumber}, {"mobile", u.Mobile}, {"department", u.Department},
			{"birth date", u.BirthDate}, {"image", u.Image}, {"address", u.Address},
			{"postal code", u.PostalCode}, {"region", u.Region}, {"city", u.City},
			{"country", u.Country}, {"country code", u.CountryCode}, {"notes", u.Notes},
			{"customer id", u.CustomerID}, {"lang", u.Lang}, {"timezone", u.Timezone},
		} {
			if row[1] != "" {
				fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
			}
		}
		fmt.Fprintf(w, "rank\t%d\nsession limit\t%s\nsettings\t%d\ncreated\t%s\nupdated\t%s\nlast login\t%s\n",
			u.Rank, sessionLimit(u.SessionLimit), u.Settings, u.CreatedAt.Format(time.RFC3339),
			formatTime(u.UpdatedAt), formatTime(u.LastLogIn))
	})
}

func sessionLimit(n int) string {
	if n == 0 {
		return "gateway default"
	}
	return strconv.Itoa(n)
}

func keyCommand() *cobra.Command {
	key := &cobra.Command{Use: "key", Short: "Manages API keys"}

	create := &cobra.Command{
		Use:   "create --user <u> --name <n> [--permissions read,write,create,delete] [--expires 720h] [--client-secret] [--json]",
		Short: "Creates an API key; the key is printed once",
		Args:  cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, _ []string) error {
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
				req.ExpiresIn = caddy.Duration(d)
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
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, _ []string) error {
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
		Use:   "revoke <id|key>",
		Short: "Revokes an API key, named by its id (key_...) or by the key itself",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *adminClient, args []string) error {
			id, err := ops.revokeKey(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked key %s\n", id)
			return nil
		}),
	}

	key.AddCommand(create, list, revoke)
	return key
}

func sessionCommand() *cobra.Command {
	session := &cobra.Command{Use: "session", Short: "Lists and revokes sessions (logins and their refresh tokens)"}
	list := &cobra.Command{
		Use:   "list [--user <u>] [--json]",
		Short: "Lists sessions",
		Args:  cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *adminClient, _ []string) error {
			user, _ := cmd.Flags().GetString("user")
			sessions, err := c.listSessions(user)
			if err != nil {
				return err
			}
			return printOut(cmd, sessions, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tUSER\tCREATED\tEXPIRES\tKEY\tSTATE")
				for _, s := range sessions {
					st := "live"
					if s.Revoked {
						st = "revoked (" + s.RevokeReason + ")"
					} else if !time.Now().Before(s.ExpiresAt) {
						st = "expired"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.User, formatTime(s.CreatedAt), formatTime(s.ExpiresAt), dash(s.KeyID), st)
				}
			})
		}),
	}
	list.Flags().String("user", "", "only this user's sessions")
	list.Flags().Bool("json", false, "print JSON")
	revoke := &cobra.Command{
		Use:   "revoke <id>",
		Short: "Revokes a session: its access and refresh tokens stop working",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *adminClient, args []string) error {
			if err := c.revokeSession(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked session %s\n", args[0])
			return nil
		}),
	}
	session.AddCommand(list, revoke)
	return session
}

func signingKeyCommand() *cobra.Command {
	sk := &cobra.Command{Use: "signing-key", Short: "Lists and rotates the token signing keys"}
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "Lists signing keys (public information only)",
		Args:  cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *adminClient, _ []string) error {
			keys, err := c.listSigningKeys()
			if err != nil {
				return err
			}
			return printOut(cmd, keys, func(w io.Writer) {
				fmt.Fprintln(w, "KID\tALG\tCREATED\tRETIRED\tSIGNING")
				for _, k := range keys {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\n", k.KID, k.Alg, formatTime(k.CreatedAt), formatTime(k.RetiredAt), k.Signing)
				}
			})
		}),
	}
	list.Flags().Bool("json", false, "print JSON")
	rotate := &cobra.Command{
		Use:   "rotate [--json]",
		Short: "Makes a new key the signer; old keys keep verifying until their tokens expire",
		Args:  cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *adminClient, _ []string) error {
			k, err := c.rotateSigningKey()
			if err != nil {
				return err
			}
			return printOut(cmd, k, func(w io.Writer) {
				fmt.Fprintf(w, "new signing key\t%s\nalg\t%s\n", k.KID, k.Alg)
			})
		}),
	}
	rotate.Flags().Bool("json", false, "print JSON")
	sk.AddCommand(list, rotate)
	return sk
}

func backupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup <file> [--json]",
		Short: "Writes a consistent copy of the store, checks it, and reports what it holds",
		Long: `
Writes a consistent copy of the whole store (taken in one read transaction:
the server keeps serving and writing) to <file>, created 0600 because it
holds the signing keys, then opens the copy and checks that every record
and index entry resolves. To restore, stop the server and point the db
option at the copy (or copy it over the old file).
`,
		Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *adminClient, args []string) error {
			counts, err := c.backup(args[0])
			if err != nil {
				return err
			}
			return printOut(cmd, counts, func(w io.Writer) {
				fmt.Fprintf(w, "backup\t%s\nusers\t%d\napi keys\t%d\nsessions\t%d\nsigning keys\t%d\n",
					args[0], counts.Users, counts.APIKeys, counts.Sessions, counts.SigningKeys)
			})
		}),
	}
	cmd.Flags().Bool("json", false, "print JSON")
	return cmd
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
