package qmail

import (
	"bytes"
	"strings"
)

// Received is what qmail-smtpd's own Received line says:
//
//	Received: from HOST (HELO NAME) (INFO@IP)
//	  by LOCAL with PROTO; DATE
//
// qmail-smtpd leaves out "(HELO NAME)" when the name equals HOST, and
// "INFO@" without TCPREMOTEINFO; bytes outside its safe set are '?'.
type Received struct {
	Host  string // TCPREMOTEHOST, or "unknown"
	Helo  string // the HELO name, HOST when qmail-smtpd left it out
	Info  string // TCPREMOTEINFO: ident, or the SMTP AUTH user under an AUTH patch
	IP    string
	Local string
	Proto string // SMTP; ESMTPA, ESMTPSA under AUTH patches (RFC 3848)
}

// AuthUser is the SMTP AUTH user when the line says it authenticated
// (protocol ESMTPA or ESMTPSA, as the AUTH patches write): without that,
// INFO is an ident answer, which names no one mf can trust.
func (r *Received) AuthUser() string {
	if strings.HasSuffix(r.Proto, "A") && strings.HasPrefix(r.Proto, "ESMTP") {
		return r.Info
	}
	return ""
}

// ParseReceived reads the first header field of a message as
// qmail-smtpd's Received line. ok is false when it has not that form,
// and then nothing of it is to be believed. field is the field as it
// stands in the message, folded lines joined by LF, "Received:" included.
func ParseReceived(field []byte) (r *Received, ok bool) {
	s, found := bytes.CutPrefix(field, []byte("Received: from "))
	if !found {
		return nil, false
	}
	line, rest, found := bytes.Cut(s, []byte("\n  by "))
	if !found {
		return nil, false
	}
	r = &Received{}
	// line: HOST[ (HELO NAME)] ([INFO@]IP)
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return nil, false
	}
	r.Host = string(line[:sp])
	line = line[sp:]
	if h, found := bytes.CutPrefix(line, []byte(" (HELO ")); found {
		end := bytes.IndexByte(h, ')')
		if end < 0 {
			return nil, false
		}
		r.Helo = string(h[:end])
		line = h[end+1:]
	} else {
		r.Helo = r.Host
	}
	if len(line) < 4 || line[0] != ' ' || line[1] != '(' || line[len(line)-1] != ')' {
		return nil, false
	}
	addr := line[2 : len(line)-1]
	if i := bytes.LastIndexByte(addr, '@'); i >= 0 {
		r.Info, addr = string(addr[:i]), addr[i+1:]
	}
	r.IP = string(addr)
	// rest: LOCAL with PROTO; DATE
	local, rest, found := bytes.Cut(rest, []byte(" with "))
	if !found {
		return nil, false
	}
	proto, _, found := bytes.Cut(rest, []byte("; "))
	if !found {
		return nil, false
	}
	r.Local, r.Proto = string(local), string(proto)
	for _, v := range []string{r.Host, r.Helo, r.Info, r.IP, r.Local, r.Proto} {
		if !safe(v) {
			return nil, false
		}
	}
	if r.Host == "" || r.IP == "" || r.Local == "" || r.Proto == "" {
		return nil, false
	}
	return r, true
}

// safe reports whether every byte of s is one qmail-smtpd's safeput
// lets through, or its '?' stand-in: anything else was not written by it.
func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte(".@%+/=:-[]?", c) >= 0:
		default:
			return false
		}
	}
	return true
}
