// Package dbstate reads and changes the replication topology of MariaDB fleets: it discovers the tree from seeds,
// diagnoses it, moves a replica under another instance, and switches the primary over to a replica without losing
// acknowledged writes. It also pushes runtime variables to many instances as one transaction.
//
// # Model
//
// Parsing (SHOW SLAVE STATUS, SHOW SLAVE HOSTS, server variables, GTID positions, SHOW GRANTS lines, option files,
// audit logs) and every decision are pure functions over plain structs: ParsePosition, Errant, ErrantAgainst,
// ParseReplicaStatus, Diagnose, CheckMove, CheckSwitchover, ReadAuditRun, FindLeftovers. Only thin functions touch a server,
// through a Querier (*sql.DB, *sql.Conn, *sql.Tx) or a Client, which keeps one pool per instance address.
// Discover needs only an InstanceReader and planning only Servers, the few reads and statements the steps use:
// *Client implements both, and each step of a switchover is built by its own function and tested against a
// small fake of Servers.
//
// Every change is a Plan: an ordered list of steps, each with a precondition, an action and, where possible, an
// undo. A plan prints (Plan.WriteText, JSON) before anything runs, and Execute writes an audit log as JSON lines
// (time, user, step, result): a start line before each step runs and a line with its outcome after, so that after
// a crash of dbstate the log shows which step was running. If a step fails before the plan's point of no return,
// every completed step is undone in reverse order, each undo reverting only what its step changed
// (ErrNothingChanged otherwise), and the error says so: "nothing changed" when the failure came before any change
// (ExecError.NothingChanged), "rolled back" only after Plan.VerifyRollback read the servers back, "rollback NOT
// VERIFIED" with what it found otherwise. Cleanup steps (Step.Cleanup) run whether or not an earlier step failed,
// before or after the point of no return. Plans of moves and switchovers run once (Plan.OneShot). Each audit
// record carries the run id, host, OS user and database account; ReadAuditRun and AuditRun.WriteTimeline read
// a run back. A step that changes what must not outlive its run (fence-writers locking accounts, set-read-only)
// writes an "intent" record (AuditRecord.Fence) before the change; after a kill -9 of dbstate, ReadLeftovers
// (pure: FindLeftovers) says what the run left, and PlanRecover plans lifting exactly that, or, for a switchover
// past the point where only going forward is safe (Leftovers.Forward: promoted, maybe promoted, or dbstate's own
// login possibly locked on the old primary with the candidate caught up), finishing it (PlanRecoverWith).
//
// Moving a replica waits until its new master has logged the replica's position (gtid_binlog_pos, polled and
// compared per domain), so the new master may be the root primary as well as another replica.
//
// # Guarantees of Switchover (primary X to replica Y)
//
//   - Preflight refuses unless Y is a direct, healthy replica of X with lag under a bound (lag counts beyond a
//     replica's MASTER_DELAY), without a MASTER_DELAY (see below) or replication filters of its own; every instance
//     of the tree answered; no instance has errant GTIDs (also checked live: the replicas read before X and compared
//     per domain by sequence number, whatever the server id); X and Y use the same binlog format and gtid_domain_id
//     (ErrGTIDDomain); X replicates from no one; dbstate's account holds every privilege the steps use on every
//     instance they touch (PrimaryPrivileges, CandidatePrivileges, MovePrivileges, ReadPrivileges, also through
//     roles); and the replication account logs in to Y with REPLICATION SLAVE. A refusal lists every check, passed
//     or failed (RefusalError.Checks).
//   - Nothing waits unbounded. Every statement a Client sends has a deadline (ClientOptions.StatementTimeout, also
//     the session's max_statement_time); waits by design get their own bound on top. The write-unavailability
//     window, from set-read-only until promote made Y writable, lasts at most SwitchoverOptions.MaxWindow (plus
//     a tenth, at most 1 s): past it the switchover rolls back (ErrWindowExceeded). So a hung X or Y costs a
//     bounded window, then a rollback that names every undo it could not do there. Before read_only=1, long
//     writes, open write transactions and LOCK TABLES sessions on X refuse the switchover (ErrLongWrites) or are
//     killed (KillLongWrites). A delayed Y is refused unless named as SwitchoverOptions.DelayedCandidate.
//   - The steps connect to the addresses the caller gave for X and Y, and CHANGE MASTER names Y by that
//     address, whatever report_host says. Delayed replicas are moved with their delay kept.
//   - Y is caught up while X still takes writes; only then are the accounts that write through read_only (READ
//     ONLY ADMIN, included in ALL PRIVILEGES in 10.11, directly or through a role) locked, X made read-only and
//     every client session on X killed, and Y waits with MASTER_GTID_WAIT for X's final gtid_binlog_pos. Every
//     write X acknowledged is therefore on Y before Y becomes writable.
//   - The process list names a session's user and client host, not the account (user@host pattern) it logged in
//     through, and with name resolution a client at 127.0.0.1 shows as "localhost". So fencing locks every
//     account of each connected user that bypasses read_only, whatever its host, and every idle one, except
//     NeverLock accounts (killed, never locked; none by default). The same accounts are locked on Y from before
//     X is fenced until the promotion, and on X's other replicas until the end of the run. dbstate's own
//     account, when it bypasses read_only, is locked with them there (an application that shares dbstate's
//     login and fails over to Y or a replica is fenced like any other), and on X right before the promotion.
//     Before locking it on an instance, dbstate logs in a few connections ahead into its pool's reserve (the
//     lock is checked at login only): the pool takes every new connection there from the reserve, the last
//     one only for the unlock, so idle closes and dropped sessions cannot leave dbstate locked out mid-run.
//     Should dbstate die while its login is locked on Y or a replica before the promotion, recover unlocks
//     them through X (binlogged there, the unlock replicates to them). Events ENABLED on X are stopped there before read_only=1
//     and enabled on Y after the promotion. FenceRefuse refuses while any of these is connected, other than
//     dbstate's own connections.
//   - If X logs anything after its final position (a writer that was not fenced, e.g. on a NeverLock account
//     such as root@localhost), the switchover fails and rolls back: X is checked after the final wait and again
//     in promote, right before Y becomes writable. A write in the round trip between that last check and
//     SET GLOBAL read_only=0 on Y is not caught: it stays on X alone, and replication from Y then stops on it.
//     Accounts that bypass read_only can still write to any replica afterwards, X included: that is an errant
//     transaction, which Diagnose reports.
//   - Any failure before Y is writable restores the original topology: X writable, accounts unlocked, replicas
//     back under X, Y replicating from X. The fenced accounts are unlocked by a cleanup step, also after a
//     failure past the point of no return.
//   - Replication statements (CHANGE MASTER ...) are sent as validated, quoted text, never as server-side prepared
//     statements. Statements that must stay local to one server (account locks) run with sql_log_bin=0, so they
//     never become errant transactions.
//   - Passwords appear in no log, error, plan or JSON output, nor in any fmt verb of Credentials or ChangeMaster.
//     SwitchoverOptions.Replication should be a REPLICATION SLAVE account: X stores it in its master.info.
//
// # Runtime variables
//
// DesiredVars (ParseDesiredVars) gives values for every instance and per-group overrides. PlanVariables reads
// each instance's information_schema.SYSTEM_VARIABLES rows (ReadVariables) and, through the pure NormaliseVar,
// ObservedVar, CheckSettable and DiffVars, validates every value (the variable exists, is dynamic and global, the
// value fits its type, range, block size and allowed members) and compares it with the current one in the
// server's canonical form, so that equivalent spellings (ON/1/yes, 64M/67108864, 10m/600) never show as a change.
// Any rejection fails planning before anything is sent. VarsPlan.Execute then pushes the plan as one transaction:
// snapshot every instance that changes, SET GLOBAL with bounded parallelism, read every value back, and on any
// failure restore the snapshot wherever a statement was sent and verify the restore by reading. The outcome is
// stated plainly (applied everywhere, rolled back everywhere, rollback incomplete with the instances, their
// values and the statements to run); a statement the server refused changed nothing and is not restored. Names
// reach statements only as validated identifiers, values only as QuoteString literals or canonical numbers.
//
// Errant GTIDs are found per domain in Go (MariaDB has no gtid_subset): see Errant for what positions can and
// cannot show.
//
// # Users, roles and grants
//
// A DesiredGrants file (ParseDesiredGrants, YAML, unknown keys refused) lists users and roles with their
// authentication, TLS requirement, limits, roles, default role and grants. ReadGrants reads a server's in a fixed
// number of queries (mysql.global_priv's JSON, mysql.roles_mapping, mysql.db, mysql.tables_priv,
// mysql.columns_priv); ParseShowGrants reads the same from SHOW GRANTS in any quoting style, and the two agree.
// DesiredGrants.Normalize expands ALL PRIVILEGES against the server's own privilege list and hashes passwords on
// the client; DiffGrants (pure) returns the statements, ranked so that each finds what it needs. PlanGrants runs
// the diff on every instance of a cluster: what every instance lacks runs once on the primary and replicates,
// drift on some instances runs on those only with sql_log_bin=0, so that no replica gains an errant GTID.
// Applying waits for the replicas after each rank and reads every instance back; a failure midway reports which
// statements ran and which did not, and planning again shows what remains. Every name goes through QuoteIdent;
// authentication strings never appear in plans, errors, logs or JSON (GrantChange.SQL is redacted, the statement
// that runs is unexported).
//
// The dbtest subpackage starts real mariadbd instances and topologies for tests, and (StartTopology) outside
// tests, as examples/sandbox does.
package dbstate
