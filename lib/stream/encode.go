package stream

import (
	"errors"
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789ABCDEF"

// Encode makes v safe as one envelope field value: '%', control bytes
// (CR, LF, NUL, TAB and the rest), DEL, bytes that are not UTF-8, and
// spaces at either end become %XX. Everything else is left readable.
func Encode(v string) string {
	if !needsEncoding(v) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		c := v[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(v[i:])
			if r == utf8.RuneError && n == 1 {
				escape(&b, c)
			} else {
				b.WriteString(v[i : i+n])
			}
			i += n
			continue
		}
		if c < 0x20 || c == 0x7f || c == '%' || (c == ' ' && (i == 0 || i == len(v)-1)) {
			escape(&b, c)
		} else {
			b.WriteByte(c)
		}
		i++
	}
	return b.String()
}

func escape(b *strings.Builder, c byte) {
	b.WriteByte('%')
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&15])
}

func needsEncoding(v string) bool {
	if v == "" {
		return false
	}
	if v[0] == ' ' || v[len(v)-1] == ' ' || !utf8.ValidString(v) {
		return true
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f || c == '%' {
			return true
		}
	}
	return false
}

// Decode reverses Encode. A '%' must be followed by two hex digits.
func Decode(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+2 >= len(v) || unhex(v[i+1]) < 0 || unhex(v[i+2]) < 0 {
			return "", errors.New("'%' not followed by two hex digits (write %25 for a percent sign)")
		}
		b.WriteByte(byte(unhex(v[i+1])<<4 | unhex(v[i+2])))
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
