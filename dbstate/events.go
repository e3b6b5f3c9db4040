package dbstate

import (
	"context"
	"fmt"
	"strings"
)

// Scheduled events run as their definer: one defined by root@localhost writes through read_only. A switchover
// therefore stops the events that are ENABLED on the old primary before it becomes read-only (ALTER EVENT ...
// DISABLE ON SLAVE, not binlogged: what the server itself does to the events it replicates) and enables the same
// events on the new primary after the promotion (ALTER EVENT ... ENABLE, binlogged: the replicas turn it into
// SLAVESIDE_DISABLED by themselves). Both name the event's definer again: a plain ALTER EVENT would make
// dbstate's account the definer.

// Event is a scheduled event, as information_schema.EVENTS names it.
type Event struct {
	Schema  string `json:"schema"`
	Name    string `json:"name"`
	Definer string `json:"definer"` // user@host
}

func (e Event) String() string { return clean(e.Schema + "." + e.Name) }

// maxEvents bounds the events a switchover looks at on one instance.
const maxEvents = 10_000

// alterEventSQL is pure: the ALTER EVENT that enables (ENABLE) or stops (DISABLE ON SLAVE) e, keeping its definer.
// Names are outside text: they are quoted, and a definer that is not user@host is refused.
func alterEventSQL(e Event, enable bool) (string, error) {
	schema, err := QuoteIdent(e.Schema)
	if err != nil {
		return "", fmt.Errorf("event schema: %w", err)
	}
	name, err := QuoteIdent(e.Name)
	if err != nil {
		return "", fmt.Errorf("event name: %w", err)
	}
	d, err := ParseAccount(e.Definer)
	if err != nil {
		return "", fmt.Errorf("event %s definer: %w", e, err)
	}
	definer, err := d.sql()
	if err != nil {
		return "", fmt.Errorf("event %s definer: %w", e, err)
	}
	state := "DISABLE ON SLAVE"
	if enable {
		state = "ENABLE"
	}
	return "ALTER DEFINER=" + definer + " EVENT " + schema + "." + name + " " + state, nil
}

// eventList names events for a plan or a log line.
func eventList(es []Event) string {
	parts := make([]string, len(es))
	for k, e := range es {
		parts[k] = e.String()
	}
	return strings.Join(parts, ", ")
}

// enabledEvents reads the events that are ENABLED on addr (they run there when the event scheduler is ON).
func (c *Client) enabledEvents(ctx context.Context, addr string) ([]Event, error) {
	var out []Event
	err := c.withSession(ctx, addr, func(q Querier) error {
		rows, err := queryRows(ctx, q, fmt.Sprintf("SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER FROM information_schema.EVENTS "+
			"WHERE STATUS = 'ENABLED' ORDER BY EVENT_SCHEMA, EVENT_NAME LIMIT %d", maxEvents+1))
		if err != nil {
			return err
		}
		if len(rows) > maxEvents {
			return fmt.Errorf("more than %d events", maxEvents)
		}
		for _, r := range rows {
			out = append(out, Event{Schema: r["EVENT_SCHEMA"], Name: r["EVENT_NAME"], Definer: r["DEFINER"]})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: read events: %w", addr, err)
	}
	return out, nil
}

// setEventsEnabled enables or stops events on addr, without binary logging when local. done receives each
// event once its statement succeeded.
func (c *Client) setEventsEnabled(ctx context.Context, addr string, events []Event, enable, local bool, done func(Event)) error {
	if len(events) == 0 {
		return nil
	}
	return c.statementSession(ctx, addr, local, func(q Querier) error {
		for _, e := range events {
			stmt, err := alterEventSQL(e, enable)
			if err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %s: %w", addr, clean(stmt), err)
			}
			if done != nil {
				done(e)
			}
		}
		return nil
	})
}
