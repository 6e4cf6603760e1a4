package config

import (
	"errors"
	"strings"
)

// Words cuts a value of mf.conf into words at blanks, as quota rules and
// accept checks are written; a double-quoted part keeps its blanks
// (reply="451 4.7.1 Slow down" is one word). A control character is an
// error, and so is a quote left open.
func Words(s string) ([]string, error) {
	var out []string
	var b strings.Builder
	in, any := false, false
	for _, c := range s {
		switch {
		case c == '"':
			in, any = !in, true
		case !in && (c == ' ' || c == '\t'):
			if any {
				out = append(out, b.String())
				b.Reset()
				any = false
			}
		case c < 0x20 || c == 0x7f:
			return nil, errors.New("control character")
		default:
			b.WriteRune(c)
			any = true
		}
	}
	if in {
		return nil, errors.New("unterminated quote")
	}
	if any {
		out = append(out, b.String())
	}
	return out, nil
}
