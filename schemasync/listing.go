package schemasync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/evenkeel/evenkeel/schemasync/observation"
)

// EntryType is the type nginx's JSON autoindex gives an entry.
type EntryType string

// Entry types: a dangling symlink is listed as "other" (nginx cannot stat its target).
const (
	TypeDirectory EntryType = "directory"
	TypeFile      EntryType = "file"
	TypeOther     EntryType = "other"
)

// Entry is one element of an nginx JSON autoindex listing.
type Entry struct {
	Name  string    `json:"name"`
	Type  EntryType `json:"type"`
	MTime time.Time `json:"-"`
	Size  int64     `json:"size"`
}

// ErrMalformedListing is wrapped by every error from ParseListing.
var ErrMalformedListing = errors.New("malformed directory listing")

type rawEntry struct {
	Name  *string   `json:"name"`
	Type  EntryType `json:"type"`
	MTime string    `json:"mtime"`
	Size  *int64    `json:"size"`
}

// ParseListing parses an nginx "autoindex_format json" listing: a JSON array of {"name", "type", "mtime",
// "size"}. It rejects anything else, so that a broken or foreign page is never read as an empty directory:
// no array, a missing or path-like name ("", ".", "..", or containing "/" or NUL), an unknown type, a duplicate
// name, an unparseable mtime, a negative size, or trailing data.
func ParseListing(data []byte) ([]Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw []rawEntry
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedListing, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: not a JSON array", ErrMalformedListing)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the array", ErrMalformedListing)
	}
	out := make([]Entry, 0, len(raw))
	seen := make(map[string]struct{}, len(raw))
	for i, r := range raw {
		if r.Name == nil {
			return nil, fmt.Errorf("%w: entry %d has no name", ErrMalformedListing, i)
		}
		name := *r.Name
		if !observation.ValidName(name) {
			return nil, fmt.Errorf("%w: entry %d has an invalid name %q", ErrMalformedListing, i, name)
		}
		if _, dup := seen[name]; dup {
			return nil, fmt.Errorf("%w: duplicate entry %q", ErrMalformedListing, name)
		}
		seen[name] = struct{}{}
		switch r.Type {
		case TypeDirectory, TypeFile, TypeOther:
		default:
			return nil, fmt.Errorf("%w: entry %q has unknown type %q", ErrMalformedListing, name, r.Type)
		}
		e := Entry{Name: name, Type: r.Type}
		if r.MTime != "" {
			t, err := http.ParseTime(r.MTime)
			if err != nil {
				return nil, fmt.Errorf("%w: entry %q has an invalid mtime %q", ErrMalformedListing, name, r.MTime)
			}
			e.MTime = t
		}
		if r.Size != nil {
			if *r.Size < 0 {
				return nil, fmt.Errorf("%w: entry %q has a negative size", ErrMalformedListing, name)
			}
			e.Size = *r.Size
		}
		out = append(out, e)
	}
	return out, nil
}
