// Package dbstate reads and changes the replication topology of MariaDB fleets: it discovers the tree from seeds,
// diagnoses it, moves a replica under another instance, and switches the primary over to a replica without losing
// acknowledged writes.
//
// # Model
//
// Parsing (SHOW SLAVE STATUS, SHOW SLAVE HOSTS, server variables, GTID positions, SHOW GRANTS lines, option files)
// and every decision are pure functions over plain structs: ParsePosition, Errant, ParseReplicaStatus, Diagnose,
// CheckMove, CheckSwitchover. Only thin functions touch a server, through a Querier (*sql.DB, *sql.Conn, *sql.Tx)
// or a Client, which keeps one pool per instance address.
//
// Every change is a Plan: an ordered list of steps, each with a precondition, an action and, where possible, an
// undo. A plan prints (Plan.WriteText, JSON) before anything runs, and Execute writes each step's outcome to an
// audit log as JSON lines (time, user, step, result). If a step fails before the plan's point of no return, every
// completed step is undone in reverse order and the error says so (ExecError.RolledBack).
//
// # Guarantees of Switchover (primary X to replica Y)
//
//   - Preflight refuses unless Y is a direct, healthy replica of X with lag under a bound, no instance of the tree
//     has errant GTIDs, X and Y use the same binlog format, and X replicates from no one.
//   - Y is caught up while X still takes writes; only then are the connected accounts that write through
//     read_only (READ ONLY ADMIN, included in ALL PRIVILEGES in 10.11, directly or through a role) locked, X made
//     read-only and every client session on X killed, and Y waits with MASTER_GTID_WAIT for X's final
//     gtid_binlog_pos. Every write X acknowledged is therefore on Y before Y becomes writable. If X logs anything
//     after that position before Y is promoted (a writer that was not fenced, e.g. on a NeverLock account such
//     as root@localhost), the switchover fails and rolls back. Accounts that bypass read_only can still write to
//     any replica afterwards, X included: that is an errant transaction, which Diagnose reports.
//   - Any failure before Y is writable restores the original topology: X writable, accounts unlocked, replicas
//     back under X, Y replicating from X.
//   - Replication statements (CHANGE MASTER ...) are sent as validated, quoted text, never as server-side prepared
//     statements. Statements that must stay local to one server (account locks) run with sql_log_bin=0, so they
//     never become errant transactions.
//   - Passwords appear in no log, error, plan or JSON output.
//
// Errant GTIDs are found per domain in Go (MariaDB has no gtid_subset): see Errant for what positions can and
// cannot show.
//
// The dbtest subpackage starts real mariadbd instances and topologies for tests.
package dbstate
