package caddymodule

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/internal/admin"
)

// `caddy authgate key|session|signing-key ...`: credentials.

func keyCommand() *cobra.Command {
	key := &cobra.Command{Use: "key", Short: "Manages API keys"}

	create := &cobra.Command{
		Use:   "create --user <u> --name <n> [--permissions read,write,create,delete] [--expires 720h] [--client-secret] [--json]",
		Short: "Creates an API key; the key is printed once",
		Args:  cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, _ []string) error {
			f := cmd.Flags()
			var req admin.CreateKeyRequest
			req.User, _ = f.GetString("user")
			req.Name, _ = f.GetString("name")
			req.Permissions, _ = f.GetString("permissions")
			req.ClientSecret, _ = f.GetBool("client-secret")
			req.Description, _ = f.GetString("description")
			if req.User == "" || req.Name == "" {
				return errors.New("--user and --name are required")
			}
			if exp, _ := f.GetString("expires"); exp != "" {
				d, err := admin.ParseDuration(exp)
				if err != nil || d <= 0 {
					return fmt.Errorf("--expires %q: want a positive duration like 720h", exp)
				}
				req.ExpiresIn = admin.Duration(d)
			}
			k, err := ops.CreateKey(req)
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
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, _ []string) error {
			user, _ := cmd.Flags().GetString("user")
			keys, err := ops.ListKeys(user)
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
		RunE: withClient(func(cmd *cobra.Command, ops *admin.Client, args []string) error {
			id, err := ops.RevokeKey(args[0])
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
		RunE: withClient(func(cmd *cobra.Command, c *admin.Client, _ []string) error {
			user, _ := cmd.Flags().GetString("user")
			sessions, err := c.ListSessions(user)
			if err != nil {
				return err
			}
			return printOut(cmd, sessions, func(w io.Writer) {
				fmt.Fprintln(w, "ID\tUSER\tKIND\tCREATED\tEXPIRES\tLAST SEEN\tKEY\tSTATE")
				for _, s := range sessions {
					st := "live"
					if s.Revoked {
						st = "revoked (" + s.RevokeReason + ")"
					} else if !time.Now().Before(s.ExpiresAt) {
						st = "expired"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.User, s.Kind(), formatTime(s.CreatedAt), formatTime(s.ExpiresAt), formatTime(s.LastSeen), dash(s.KeyID), st)
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
		RunE: withClient(func(cmd *cobra.Command, c *admin.Client, args []string) error {
			if err := c.RevokeSession(args[0]); err != nil {
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
		RunE: withClient(func(cmd *cobra.Command, c *admin.Client, _ []string) error {
			keys, err := c.ListSigningKeys()
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
		RunE: withClient(func(cmd *cobra.Command, c *admin.Client, _ []string) error {
			k, err := c.RotateSigningKey()
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
