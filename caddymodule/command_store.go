package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
	"github.com/authgate/authgate/store/etcd"
)

// `caddy authgate backup|import ...`: the store as a whole.

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
		RunE: withClient(func(cmd *cobra.Command, c *admin.Client, args []string) error {
			counts, err := backup(c, args[0])
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

// backup writes a consistent copy of the store to path and checks it. With
// --db the copy is taken from the opened file directly (no buffering of the
// whole store in memory); otherwise it streams from the admin endpoint.
func backup(c *admin.Client, path string) (store.Counts, error) {
	if _, err := os.Stat(path); err == nil {
		return store.Counts{}, fmt.Errorf("%s exists: choose a new file (a backup never overwrites)", path)
	}
	var kind string
	if err := writeFileAtomic(path, func(w io.Writer) (err error) {
		kind, err = c.Backup(w)
		return err
	}); err != nil {
		return store.Counts{}, fmt.Errorf("writing backup %s: %w", path, err)
	}
	if kind != "bbolt" {
		return checkSnapshotFile(path)
	}
	copy, err := bbolt.Open(path, bbolt.Options{})
	if err != nil {
		return store.Counts{}, fmt.Errorf("backup %s does not open: %w", path, err)
	}
	defer copy.Close()
	counts, err := copy.Check()
	if err != nil {
		return counts, fmt.Errorf("backup %s fails its check: %w", path, err)
	}
	return counts, nil
}

// checkSnapshotFile reads back a backup in the JSON snapshot format (the
// etcd backend's) and counts what it holds; a copy cut short does not
// decode.
func checkSnapshotFile(path string) (store.Counts, error) {
	f, err := os.Open(path)
	if err != nil {
		return store.Counts{}, err
	}
	defer f.Close()
	snap, err := etcd.ReadBackup(f)
	if err != nil {
		return store.Counts{}, fmt.Errorf("backup %s does not read back: %w", path, err)
	}
	if len(snap.SigningKeys) == 0 {
		return store.Counts{}, fmt.Errorf("backup %s holds no signing key: it is not a whole store", path)
	}
	return store.Counts{Users: len(snap.Users), APIKeys: len(snap.APIKeys), Sessions: len(snap.Sessions), SigningKeys: len(snap.SigningKeys)}, nil
}

// writeFileAtomic writes a file via a temporary sibling and rename, created
// 0600 (a store copy holds signing keys), so a failed write leaves no
// half-written file under the final name.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// importCommand is `caddy authgate import htpasswd|caddyfile|keys <file>`.
func importCommand() *cobra.Command {
	imp := &cobra.Command{
		Use:   "import",
		Short: "Imports users (htpasswd, Caddyfile basic_auth) and legacy API keys",
		Long: `
Imports users and API keys from the system authgate replaces.

Users keep their bcrypt password hashes, which are upgraded to argon2id at
each user's next successful login; other hash schemes are refused. Legacy
API keys keep working as they are and are stored as digests only. Entries
that exist already are skipped, never overwritten. A file with any bad line
imports nothing; the error lists the lines. <file> may be - for standard
input.
`,
	}
	users := func(format, use, short string) *cobra.Command {
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: withClient(func(cmd *cobra.Command, c *admin.Client, args []string) error {
				content, err := readImportFile(cmd, args[0])
				if err != nil {
					return err
				}
				roles, _ := cmd.Flags().GetStringSlice("roles")
				req := admin.ImportUsersRequest{Format: format, Content: content, Roles: roles}
				return runImport(cmd, req, func() (admin.ImportReport, error) { return c.ImportUsers(req) })
			}),
		}
		c.Flags().StringSlice("roles", nil, "comma-separated roles for every imported user")
		c.Flags().Bool("json", false, "print the report as JSON")
		return c
	}
	keys := &cobra.Command{
		Use:   "keys <file> [--json]",
		Short: "Imports legacy API keys: lines of <username> <key> [permissions] [name]",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, c *admin.Client, args []string) error {
			content, err := readImportFile(cmd, args[0])
			if err != nil {
				return err
			}
			req := admin.ImportKeysRequest{Content: content}
			return runImport(cmd, req, func() (admin.ImportReport, error) { return c.ImportKeys(req) })
		}),
	}
	keys.Flags().Bool("json", false, "print the report as JSON")
	imp.AddCommand(
		users("htpasswd", "htpasswd <file> [--roles a,b] [--json]", "Imports users from an htpasswd file (bcrypt entries only)"),
		users("caddyfile", "caddyfile <file> [--roles a,b] [--json]", "Imports the users of a Caddyfile's basic_auth blocks (bcrypt only)"),
		keys,
	)
	return imp
}

// readImportFile reads path, or standard input for "-".
func readImportFile(cmd *cobra.Command, path string) (string, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), admin.MaxBody+1))
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return "", err
	}
	return string(raw), nil
}

// runImport sends one import request, req, with send, and prints its
// report.
func runImport(cmd *cobra.Command, req any, send func() (admin.ImportReport, error)) error {
	// The admin API reads at most admin.MaxBody; say so rather than let a
	// truncated body fail as malformed JSON.
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if len(body) > admin.MaxBody {
		return fmt.Errorf("the file is too large for one import (at most %d KiB): split it", admin.MaxBody>>10)
	}
	rep, err := send()
	if err != nil {
		return err
	}
	_, keys := req.(admin.ImportKeysRequest)
	return printOut(cmd, rep, func(w io.Writer) {
		if keys {
			fmt.Fprintln(w, "LINE\tUSER\tNAME\tKEY\tID\tRESULT\tREASON")
		} else {
			fmt.Fprintln(w, "LINE\tUSER\tID\tRESULT\tREASON")
		}
		for _, o := range rep.Results {
			line := "-"
			if o.Line > 0 {
				line = strconv.Itoa(o.Line)
			}
			if keys {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", line, o.Username, o.KeyName, o.Hint, orDash(o.KeyID), o.Result, o.Reason)
			} else {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", line, o.Username, orDash(o.UserID), o.Result, o.Reason)
			}
		}
		fmt.Fprintf(w, "\nimported %d, skipped %d\n", rep.Imported, rep.Skipped)
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// migrateCommand is `caddy authgate migrate --from-db <file>`: it copies a
// bbolt store (a stopped server's file) into the store the configuration
// names (an etcd cluster), which must be empty. It talks to the store
// directly, not through a server: a large store is not a request body.
func migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate --from-db <file> [--config <Caddyfile>] [--json]",
		Short: "Copies a bbolt store into the configured store (an empty etcd prefix)",
		Long: `
Copies every user, API key, session (with its refresh tokens) and signing
key of a bbolt store file, or of a backup of an etcd store (what backup
writes there), into the store the configuration's authgate options name,
as they are: passwords keep their hashes, keys and tokens keep working. So
it moves a single gateway onto a cluster, and restores a cluster's backup
into an empty prefix. A bbolt file must not be held by a running server
(stop it, or migrate a backup). The target must be empty; the lockout's counters are not
copied. The configuration is found as for caddy run: --config, else a
Caddyfile in the current directory.
`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			from, _ := cmd.Flags().GetString("from-db")
			if from == "" {
				return fmt.Errorf("--from-db <file> is required")
			}
			snap, err := readSnapshot(from)
			if err != nil {
				return err
			}
			dst, where, err := openConfiguredStore(cmd)
			if err != nil {
				return err
			}
			defer dst.Close()
			if err := dst.Import(snap); err != nil {
				return fmt.Errorf("copying into %s: %w", where, err)
			}
			counts := store.Counts{Users: len(snap.Users), APIKeys: len(snap.APIKeys), Sessions: len(snap.Sessions), SigningKeys: len(snap.SigningKeys)}
			return printOut(cmd, counts, func(w io.Writer) {
				fmt.Fprintf(w, "migrated\t%s → %s\nusers\t%d\napi keys\t%d\nsessions\t%d\nsigning keys\t%d\n",
					from, where, counts.Users, counts.APIKeys, counts.Sessions, counts.SigningKeys)
			})
		},
	}
	cmd.Flags().String("from-db", "", "the bbolt store file to copy")
	cmd.Flags().String("config", "", "the configuration naming the target store (default: ./Caddyfile)")
	cmd.Flags().String("adapter", "", "the config adapter (default: caddyfile for a Caddyfile)")
	cmd.Flags().Bool("json", false, "print JSON")
	return cmd
}

// readSnapshot reads what migrate copies: a bbolt store file, or an etcd
// backup (a JSON document).
func readSnapshot(path string) (*store.Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--from-db %s: %w", path, err)
	}
	head := make([]byte, 1)
	_, _ = f.Read(head)
	if head[0] == '{' {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		defer f.Close()
		snap, err := etcd.ReadBackup(f)
		if err != nil {
			return nil, fmt.Errorf("reading the backup %s: %w", path, err)
		}
		return snap, nil
	}
	f.Close()
	src, err := bbolt.Open(path, bbolt.Options{})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	snap, err := src.Export()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return snap, nil
}
