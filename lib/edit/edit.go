// Package edit finds the changes that turn a message and envelope as the
// MTA gave them into what a chain of stages made of them, as the edits a
// milter asks the MTA to make.
package edit

import (
	"fmt"
	"mf/lib/stream"
	"strings"
)

func same(f, g stream.Field) bool { return strings.EqualFold(f.Name, g.Name) && f.Value == g.Value }

// Kind is what an edit does.
type Kind int

const (
	AddHeader    Kind = iota // append Name: Value below the other fields
	InsertHeader             // put Name: Value at position Index (0 = top, hidden fields counted)
	ChangeHeader             // set the Index'th (from 1) field called Name to Value
	DeleteHeader             // remove the Index'th (from 1) field called Name
	ChangeFrom               // the envelope sender becomes Value
	AddRcpt                  // add recipient Value
	DeleteRcpt               // remove recipient Value
)

// Edit is one change for the MTA to make.
type Edit struct {
	Kind  Kind
	Index int
	Name  string
	Value string
}

func (e Edit) String() string {
	switch e.Kind {
	case AddHeader:
		return fmt.Sprintf("add header %s: %s", e.Name, e.Value)
	case InsertHeader:
		return fmt.Sprintf("insert header at %d %s: %s", e.Index, e.Name, e.Value)
	case ChangeHeader:
		return fmt.Sprintf("change header %s[%d]: %s", e.Name, e.Index, e.Value)
	case DeleteHeader:
		return fmt.Sprintf("delete header %s[%d]", e.Name, e.Index)
	case ChangeFrom:
		return fmt.Sprintf("change sender <%s>", e.Value)
	case AddRcpt:
		return fmt.Sprintf("add recipient <%s>", e.Value)
	case DeleteRcpt:
		return fmt.Sprintf("delete recipient <%s>", e.Value)
	}
	return fmt.Sprintf("edit(%d)", int(e.Kind))
}

// Envelope gives the edits that change the sender from to newFrom and the
// recipients rcpts to newRcpts. A recipient is removed by the string the
// MTA gave for it.
func Envelope(from, newFrom string, rcpts, newRcpts []string) []Edit {
	var out []Edit
	if from != newFrom {
		out = append(out, Edit{Kind: ChangeFrom, Value: newFrom})
	}
	had := map[string]bool{}
	for _, r := range rcpts {
		had[strings.ToLower(r)] = true
	}
	has := map[string]bool{}
	for _, r := range newRcpts {
		k := strings.ToLower(r)
		if !had[k] && !has[k] {
			out = append(out, Edit{Kind: AddRcpt, Value: r})
		}
		has[k] = true
	}
	for _, r := range rcpts {
		if !has[strings.ToLower(r)] {
			out = append(out, Edit{Kind: DeleteRcpt, Value: r})
			has[strings.ToLower(r)] = true // once, however often the MTA listed it
		}
	}
	return out
}
