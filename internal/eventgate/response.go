package eventgate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Entry is one failed event in an EventGate response body.
type Entry struct {
	Status  string          `json:"status"` // "invalid" or "error"
	Event   json.RawMessage `json:"event,omitempty"`
	Context EntryContext    `json:"context"`
}

// EntryContext says why the event failed. EventGate puts AJV's errors and errorsText here for invalid events,
// and a message for errors.
type EntryContext struct {
	Message    string   `json:"message,omitempty"`
	ErrorsText string   `json:"errorsText,omitempty"`
	Errors     []string `json:"errors,omitempty"`
}

// Response is the body of a 207, 400 or 500 answer.
type Response struct {
	Invalid []Entry `json:"invalid,omitempty"`
	Error   []Entry `json:"error,omitempty"`
}

// Messages returns one line per failed event: its status and the most specific text EventGate gave.
func (r *Response) Messages() []string {
	var out []string
	add := func(kind string, es []Entry) {
		for _, e := range es {
			out = append(out, kind+": "+e.Context.text())
		}
	}
	add("invalid", r.Invalid)
	add("error", r.Error)
	return out
}

func (c EntryContext) text() string {
	switch {
	case c.Message != "" && len(c.Errors) > 0:
		return c.Message + ": " + strings.Join(c.Errors, "; ")
	case c.Message != "":
		return c.Message
	case c.ErrorsText != "":
		return c.ErrorsText
	case len(c.Errors) > 0:
		return strings.Join(c.Errors, "; ")
	default:
		return "no reason given"
	}
}

// ParseResponse decodes a 207, 400 or 500 body. It accepts the shapes EventGate implementations produce: the
// context's errors may be strings or AJV error objects ({"message":..., "instancePath" or "dataPath":...}).
// A body that is not such an object, or that lists no failed event, is an error.
func ParseResponse(body []byte) (*Response, error) {
	var raw struct {
		Invalid []rawEntry `json:"invalid"`
		Error   []rawEntry `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("response body is not an EventGate result: %w", err)
	}
	if dec.More() {
		return nil, errors.New("response body is not an EventGate result: trailing data")
	}
	r := &Response{}
	for _, e := range raw.Invalid {
		r.Invalid = append(r.Invalid, e.entry("invalid"))
	}
	for _, e := range raw.Error {
		r.Error = append(r.Error, e.entry("error"))
	}
	if len(r.Invalid)+len(r.Error) == 0 {
		return nil, errors.New("response body lists no invalid or failed event")
	}
	return r, nil
}

type rawEntry struct {
	Status  string          `json:"status"`
	Event   json.RawMessage `json:"event"`
	Context struct {
		Message    string            `json:"message"`
		ErrorsText string            `json:"errorsText"`
		Errors     []json.RawMessage `json:"errors"`
	} `json:"context"`
}

func (e rawEntry) entry(kind string) Entry {
	out := Entry{Status: e.Status, Event: e.Event}
	if out.Status == "" {
		out.Status = kind
	}
	out.Context.Message = e.Context.Message
	out.Context.ErrorsText = e.Context.ErrorsText
	for _, raw := range e.Context.Errors {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out.Context.Errors = append(out.Context.Errors, s)
			continue
		}
		var ajv struct {
			Message      string `json:"message"`
			InstancePath string `json:"instancePath"`
			DataPath     string `json:"dataPath"`
		}
		if json.Unmarshal(raw, &ajv) == nil && ajv.Message != "" {
			p := ajv.InstancePath
			if p == "" {
				p = ajv.DataPath
			}
			if p == "" {
				p = "/"
			}
			out.Context.Errors = append(out.Context.Errors, p+": "+ajv.Message)
			continue
		}
		out.Context.Errors = append(out.Context.Errors, string(raw))
	}
	return out
}
