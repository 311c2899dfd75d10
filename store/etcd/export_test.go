package etcd

// Rewatch makes s's watch start again after revision rev, as a watch cut
// off for a while resumes: from a revision that may be compacted.
func Rewatch(s *Store, rev int64) { s.rewatch <- rev }

// Stale reports whether s's change feed is stale.
func Stale(s *Store) bool { return s.feed.stale() }
