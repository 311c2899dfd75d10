package caddymodule

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/internal/admin"
)

// `caddy authgate lockout list` and `user unlock`: the lockout's counters
// (API.md section 6) as an operator sees and clears them.

func lockoutCommand() *cobra.Command {
	lockout := &cobra.Command{Use: "lockout", Short: "Shows the accounts with failed logins or a lock"}
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "Lists the accounts with recent failures or a lock now; user unlock <u> clears one",
		Long: `
Lists the accounts the lockout counts now: those with recent failed
password or PIN checks, or locked until a time, locked ones first. A user's
account shows their id and username; a login that names no user shows as
"unknown login" and a client secret's as "client id", never with what was
typed. A lock resets the failure count. Unknown logins cannot be unlocked:
they expire with the lock duration.
`,
		Args: cobra.NoArgs,
		RunE: withClient(func(cmd *cobra.Command, c *admin.Client, _ []string) error {
			list, err := c.ListLockouts()
			if err != nil {
				return err
			}
			return printOut(cmd, list, func(w io.Writer) {
				fmt.Fprintln(w, "ACCOUNT\tUSER ID\tUSERNAME\tFAILURES\tLAST FAILURE\tLOCKED UNTIL")
				for _, l := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", l.Label, dash(l.UserID), dash(l.Username), l.Failures,
						formatTime(l.LastFailure), formatTime(l.LockedUntil))
				}
			})
		}),
	}
	list.Flags().Bool("json", false, "print JSON")
	lockout.AddCommand(list)
	return lockout
}

func unlockCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unlock <username>",
		Short: "Clears a user's failed logins and lock: their next login is checked again",
		Long: `
Clears the lockout's counter of a user: their failures and lock. It is the
only command that does: user passwd and user enable leave a lock as it is.
A user who is not locked stays as they are.
`,
		Args: cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admin.Client, args []string) error {
			v, err := c.UnlockUser(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s unlocked\n", v.Username)
			return nil
		}),
	}
}

// lockState is a user's lock for `user show`: "-" when clean.
func lockState(l *admin.LockView) string {
	switch {
	case l == nil:
		return "-"
	case !l.LockedUntil.IsZero():
		return "locked until " + l.LockedUntil.Format(time.RFC3339)
	}
	if l.Failures == 1 {
		return "1 recent failure, not locked"
	}
	return strconv.Itoa(l.Failures) + " recent failures, not locked"
}
