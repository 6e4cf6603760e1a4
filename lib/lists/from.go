package lists

import (
	"regexp"
	"strings"
	"sync"
)

// FromAddresses returns the addresses in From field values, as a list
// compares them: with the comments, quoting and white space RFC 5322
// allows in and around an address taken off, so that "spam(x)@evil",
// "\"spam\"@evil", "spam @ evil" and "spam<NUL>@evil" are all spam@evil.
// Control characters (a NUL) are read as white space. Only the
// addresses count, not the display names; a field left open (an
// unterminated quote, comment or bracket) yields whatever looks like an
// address in it, so that it cannot slip past a list.
func FromAddresses(values []string) []string {
	var out []string
	for _, v := range values {
		toks, broken := tokenize(v)
		if broken {
			// What a reader makes of it is anyone's guess: every
			// candidate counts.
			out = append(out, looseAddr().FindAllString(stripControls(v), -1)...)
			continue
		}
		out = append(out, addresses(toks)...)
	}
	return out
}

// looseAddr is compiled when first needed, not when a command starts.
var looseAddr = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`[^\s<>"(),;:\[\]\x00-\x1f\x7f]+@[^\s<>"(),;:\[\]\x00-\x1f\x7f]+`)
})

type token struct {
	special byte   // one of <>@,:; or 0 for text
	text    string // an atom, a quoted string's content, a domain literal
}

// tokenize cuts a field value into RFC 5322 tokens, dropping white space,
// control characters and comments, and says whether a quoted string,
// comment or domain literal was left open.
func tokenize(v string) (toks []token, broken bool) {
	var atom strings.Builder
	flush := func() {
		if atom.Len() > 0 {
			toks = append(toks, token{text: atom.String()})
			atom.Reset()
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c <= ' ' || c == 0x7f:
			flush()
		case c == '(':
			flush()
			depth := 1
			for i++; i < len(v) && depth > 0; i++ {
				switch v[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			i--
			broken = broken || depth > 0
		case c == '"':
			flush()
			var q strings.Builder
			closed := false
			for i++; i < len(v); i++ {
				d := v[i]
				if d == '\\' && i+1 < len(v) {
					i++
					d = v[i]
				} else if d == '"' {
					closed = true
					break
				}
				if d >= ' ' && d != 0x7f || d == '\t' {
					q.WriteByte(d)
				}
			}
			broken = broken || !closed
			toks = append(toks, token{text: q.String()})
		case c == '[':
			flush()
			j := strings.IndexByte(v[i:], ']')
			if j < 0 {
				broken, j = true, len(v)-i-1
			}
			toks = append(toks, token{text: strings.ReplaceAll(stripControls(v[i:i+j+1]), " ", "")})
			i += j
		case strings.IndexByte("<>@,:;", c) >= 0:
			flush()
			toks = append(toks, token{special: c})
		default:
			atom.WriteByte(c)
		}
	}
	flush()
	return toks, broken
}

// addresses reads an address list from tokens: mailboxes and groups,
// each mailbox a display name and an address in angle brackets (an
// obsolete route before it dropped) or an address alone. An address is
// its tokens joined, without what separated them.
func addresses(toks []token) []string {
	var out []string
	var plain []token   // the mailbox outside angle brackets
	var angles []string // its addresses in angle brackets
	var angle strings.Builder
	in := false
	add := func(s string) {
		if strings.Contains(s, "@") {
			out = append(out, s)
		}
	}
	end := func() {
		if in {
			angles = append(angles, angle.String())
			angle.Reset()
			in = false
		}
		if len(angles) > 0 {
			for _, a := range angles {
				add(a)
			}
		} else {
			var b strings.Builder
			for _, t := range plain {
				if t.special != 0 {
					b.WriteByte(t.special)
				} else {
					b.WriteString(t.text)
				}
			}
			add(b.String())
		}
		plain, angles = plain[:0], angles[:0]
	}
	for _, t := range toks {
		switch {
		case in && t.special == '>':
			angles = append(angles, angle.String())
			angle.Reset()
			in = false
		case in && t.special == ':':
			angle.Reset() // "<@a.example,@b.example:user@c.example>"
		case in && t.special == '<':
		case in && t.special != 0:
			angle.WriteByte(t.special)
		case in:
			angle.WriteString(t.text)
		case t.special == '<':
			in = true
		case t.special == ',' || t.special == ';':
			end()
		case t.special == ':':
			plain = plain[:0] // a group's name
		case t.special == '>':
		default:
			plain = append(plain, t)
		}
	}
	end()
	return out
}

// stripControls drops the control characters of a field value.
// It works on bytes: a header may hold any, and strings.Map would turn
// each invalid one into three.
func stripControls(v string) string {
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] >= ' ' && v[i] != 0x7f {
			b = append(b, v[i])
		}
	}
	return string(b)
}
