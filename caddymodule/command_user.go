package caddymodule

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/store"
)

// `caddy authgate user ...`: users, their profiles and settings.

func userCommand() *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manages users"}

	add := &cobra.Command{
		Use:   "add <username> [--password-stdin] [--roles a,b] [--email E]",
		Short: "Adds a user",
		Long: `
Adds a user with a password of at least password_min_length characters
(the Caddyfile's option, default 8; with --db the default applies).
Without --password-stdin it prompts twice on the terminal without echo.
`,
		Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			pw, err := readSecret(cmd, "password-stdin", "Password")
			if err != nil {
				return err
			}
			roles, _ := cmd.Flags().GetStringSlice("roles")
			email, _ := cmd.Flags().GetString("email")
			v, err := ops.AddUser(admin.AddUserRequest{Username: args[0], Password: pw, Email: email, Roles: roles})
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
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, _ []string) error {
			users, err := ops.ListUsers()
			if err != nil {
				return err
			}
			return printOut(cmd, users, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tUSERNAME\tEMAIL\tROLES\tSTATE")
				for _, u := range users {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.Profile["email"], strings.Join(u.Roles, ","), state(u.Disabled, "disabled", "enabled"))
				}
			})
		}),
	}

	show := &cobra.Command{
		Use:   "show <username> [--json]",
		Short: "Shows one user, with their lock state (failures, locked until)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			u, err := ops.ShowUser(args[0])
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
			RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
				v, err := ops.SetDisabled(args[0], disabled)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s %s\n", v.Username, state(disabled, "disabled", "enabled"))
				return nil
			}),
		}
	}

	del := &cobra.Command{
		Use:   "delete <username> [--yes]",
		Short: "Deletes a user with their API keys and sessions; asks first unless --yes",
		Long: `
Deletes a user with their API keys and sessions; it cannot be undone. It
asks for confirmation on the terminal first; without a terminal (a script)
it refuses unless --yes is given.
`,
		Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			if yes, _ := cmd.Flags().GetBool("yes"); !yes {
				u, err := ops.ShowUser(args[0])
				if err != nil {
					return err
				}
				if err := confirm(cmd, fmt.Sprintf("Delete user %s (%s) with their API keys and sessions?", u.Username, u.ID)); err != nil {
					return err
				}
			}
			if err := ops.DeleteUser(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted user %s\n", args[0])
			return nil
		}),
	}
	del.Flags().Bool("yes", false, "delete without asking")

	passwd := &cobra.Command{
		Use:   "passwd <username> [--password-stdin]",
		Short: "Sets a user's password; their existing sessions end (a lock stays: see unlock)",
		Long: `
Sets a user's password, of at least password_min_length characters (the
Caddyfile's option, default 8; with --db the default applies). Their
sessions end, so tokens issued under the old password stop working. A lock
stays as it is: user unlock clears it.
`,
		Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			pw, err := readSecret(cmd, "password-stdin", "New password")
			if err != nil {
				return err
			}
			v, err := ops.SetPassword(args[0], pw)
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
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			pin, err := readSecret(cmd, "pin-stdin", "New PIN")
			if err != nil {
				return err
			}
			v, err := ops.SetPIN(args[0], pin)
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
		setState("enable", "Enables a user (a lock stays: see unlock)", false), del, passwd, setPIN, unlockCommand(), userSetCommand(), settingCommand())
	return user
}

func userSetCommand() *cobra.Command {
	set := &cobra.Command{
		Use:   "set <username> [--email E] [--first-name F] [--last-name L] [--lang de] [--timezone Europe/Berlin] [--rank N] [--roles a,b] [--session-limit N] [...] [--json]",
		Short: "Changes a user's profile: only the fields given",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			f := cmd.Flags()
			c := admin.UserChanges{Profile: store.ProfileChanges{}}
			for _, pf := range store.ProfileFields {
				if f.Changed(pf.Flag) {
					c.Profile[pf.Name], _ = f.GetString(pf.Flag)
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
			v, err := ops.SetProfile(args[0], c)
			if err != nil {
				return err
			}
			return printUser(cmd, v)
		}),
	}
	f := set.Flags()
	for _, pf := range store.ProfileFields {
		f.String(pf.Flag, "", pf.Usage)
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
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			f := cmd.Flags()
			req := admin.SettingRequest{Name: args[1], Value: args[2]}
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
			s, err := ops.SetSetting(args[0], req)
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
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			if err := ops.DeleteSetting(args[0], args[1]); err != nil {
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
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			settings, err := ops.ListSettings(args[0])
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
func printUser(cmd *cobra.Command, u admin.UserView) error {
	return printOut(cmd, u, func(w io.Writer) {
		fmt.Fprintf(w, "id\t%s\nusername\t%s\nemail\t%s\nroles\t%s\nstate\t%s\npin\t%s\n",
			u.ID, u.Username, u.Profile["email"], strings.Join(u.Roles, ","), state(u.Disabled, "disabled", "enabled"),
			state(u.HasPIN, "set", "not set"))
		for _, f := range store.ProfileFields {
			// The email is a login too: it is shown above, set or not.
			if v := u.Profile[f.Name]; v != "" && f.Name != "email" {
				fmt.Fprintf(w, "%s\t%s\n", f.Label, v)
			}
		}
		fmt.Fprintf(w, "rank\t%d\nsession limit\t%s\nsettings\t%d\ncreated\t%s\nupdated\t%s\nlast login\t%s\nlock\t%s\n",
			u.Rank, sessionLimit(u.SessionLimit), u.Settings, u.CreatedAt.Format(time.RFC3339),
			formatTime(u.UpdatedAt), formatTime(u.LastLogIn), lockState(u.Lock))
	})
}

func sessionLimit(n int) string {
	if n == 0 {
		return "gateway default"
	}
	return strconv.Itoa(n)
}
