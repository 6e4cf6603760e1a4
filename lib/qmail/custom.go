package qmail

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"

	"mf/lib/verdict"
)

// MaxCustom is what qmail_close() reads of the custom error: 255 bytes.
const MaxCustom = 255

// CustomText is the custom error for a refusal: "D" (permanent) or "Z"
// (temporary), the enhanced status code and the text, on one line, as
// qmail-smtpd puts it after "554 " or "451 ". The SMTP code itself is
// qmail-smtpd's: a reply's 550 becomes 554.
func CustomText(r verdict.Reply) string {
	var b strings.Builder
	if r.Code >= 500 {
		b.WriteByte('D')
	} else {
		b.WriteByte('Z')
	}
	status := r.Status
	if status == "" {
		status = "5.7.1"
		if r.Code < 500 {
			status = "4.7.1"
		}
	}
	b.WriteString(status)
	text := r.Text
	if text == "" {
		text = "Message rejected"
		if r.Code < 500 {
			text = "Try again later"
		}
	}
	b.WriteByte(' ')
	for _, c := range text {
		if c < 0x20 || c == 0x7f {
			c = ' '
		}
		b.WriteRune(c)
	}
	s := b.String()
	if len(s) > MaxCustom {
		s = s[:MaxCustom]
	}
	return s
}

// ErrNoDescriptor is a custom error descriptor that is not open: the
// caller falls back to exit 31 or 71.
var ErrNoDescriptor = errors.New("custom error descriptor not open")

// WriteCustom writes text on descriptor fd, which qmail-smtpd opened for
// it. It first checks the descriptor is open, so that a site without
// the patch gets exit 31 or 71 rather than a lost text and a 451.
func WriteCustom(fd int, text string) error {
	if fd < 0 {
		return ErrNoDescriptor
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return ErrNoDescriptor
	}
	// A plain write: an *os.File would close the descriptor when
	// collected, and qmail-smtpd reads it only after the exit.
	_, err := unix.Write(fd, []byte(text))
	return err
}
