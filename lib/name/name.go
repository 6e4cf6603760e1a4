// Package name is the one rule for the names an administrator gives
// things in mf: stages of a chain, dynamic lists and quota rules. A name
// goes into store keys, log lines and file names, so it is kept to what
// needs no quoting anywhere.
package name

import "fmt"

// MaxLen is the longest name.
const MaxLen = 64

// Valid says why s is not a name: 1 to 64 ASCII letters, digits, '.',
// '_' and '-', beginning with a letter or digit.
func Valid(s string) error {
	ok := s != "" && len(s) <= MaxLen
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("name %q: use 1 to %d letters, digits, '.', '_' and '-', beginning with a letter or digit", s, MaxLen)
	}
	return nil
}
