// Package mime walks a message's MIME structure once, best effort, and
// gives each leaf part decoded: its declared and detected type, file
// name, size, text (transfer encoding and charset undone) and the names
// inside zip archives, with every part it could not decode named.
package mime

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // charsets beyond UTF-8 for text parts
	"github.com/gabriel-vasile/mimetype"
)

// Limits bound the walk, so that no message, however built, costs more
// than they allow. A limit reached is a Problem, never a silent pass.
type Limits struct {
	MaxParts   int   // leaf parts looked at
	MaxDepth   int   // multipart and message/rfc822 nesting
	MaxText    int64 // decoded bytes of a text part kept for body rules
	MaxPart    int64 // decoded bytes of a part read for type detection and zip listing
	ZipEntries int   // names listed, in all archives of a part together
	ZipDepth   int   // zip inside zip
	ZipRatio   int64 // largest uncompressed/compressed ratio of a nested archive opened
	ZipBytes   int64 // bytes decompressed for nested archives, in all
	// DetectTypes sniffs each part's type from its content
	// (DetectedType); off, that is left empty: it cost a tenth of a
	// scan whose rules never ask.
	DetectTypes bool
}

// DefaultLimits are generous for mail and small for a machine.
var DefaultLimits = Limits{
	MaxParts: 500, MaxDepth: 20, MaxText: 1 << 20, MaxPart: 32 << 20,
	ZipEntries: 10000, ZipDepth: 3, ZipRatio: 100, ZipBytes: 64 << 20,
	DetectTypes: true,
}

// Part is one leaf of the MIME tree.
type Part struct {
	Path         string // "1", "2.1": positions from 1, as IMAP numbers them
	Header       message.Header
	DeclaredType string // media type of Content-Type, lower case; "" when absent
	DetectedType string // media type detected from the content
	Filename     string // Content-Disposition filename, or Content-Type name
	Size         int64  // decoded bytes
	Text         []byte // decoded UTF-8 of a text/* part, up to MaxText
	ZipNames     []string
	Problem      string // why the part was not (wholly) decoded
}

// Attachment reports whether the part is a file rather than message text.
func (p *Part) Attachment() bool {
	if p.Filename != "" {
		return true
	}
	d, _, _ := p.Header.ContentDisposition()
	return strings.EqualFold(d, "attachment")
}

// Result is the walk of one message.
type Result struct {
	Header   message.Header // the top-level header block
	Parts    []Part
	Problems []string // "PATH: what went wrong", for the parts and the structure
}

// Undecoded reports whether any part or the structure could not be
// decoded.
func (r *Result) Undecoded() bool { return len(r.Problems) > 0 }

type walker struct {
	l        Limits
	res      *Result
	zipBytes int64
}

// Walk reads the message from r and walks it. Only an error reading r
// is returned: everything wrong with the message itself is a Problem.
func Walk(r io.Reader, l Limits) (*Result, error) {
	w := &walker{l: l, res: &Result{}}
	cr := &countReader{r: r}
	e, err := message.ReadWithOptions(cr, &message.ReadOptions{MaxHeaderBytes: 1 << 20})
	if cr.err != nil {
		return nil, cr.err
	}
	if e == nil {
		w.problem("1", "header: %v", err)
		// The rest still goes to the scanners as raw bytes; here it is
		// only drained so that the caller's reader is consumed.
		_, rerr := io.Copy(io.Discard, cr)
		return w.res, rerr
	}
	w.res.Header = e.Header
	if err != nil {
		w.problem("1", "%v", short(err))
	}
	w.entity(e, "", 1)
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, err
	}
	if cr.err != nil {
		return nil, cr.err
	}
	return w.res, nil
}

// countReader keeps the error of the underlying reader apart from the
// message's own faults.
type countReader struct {
	r   io.Reader
	err error
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

func (w *walker) problem(path, f string, args ...any) {
	if len(w.res.Problems) < 100 {
		w.res.Problems = append(w.res.Problems, path+": "+fmt.Sprintf(f, args...))
	}
}

func child(parent string, i int) string {
	if parent == "" {
		return strconv.Itoa(i)
	}
	return parent + "." + strconv.Itoa(i)
}

func short(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s), "?")
}

func (w *walker) entity(e *message.Entity, p string, depth int) {
	if depth > w.l.MaxDepth {
		w.problem(or(p, "1"), "nested deeper than %d", w.l.MaxDepth)
		return
	}
	if mr := e.MultipartReader(); mr != nil {
		for i := 1; ; i++ {
			part, err := mr.NextPart()
			if err == io.EOF {
				return
			}
			cp := child(p, i)
			if err != nil && part == nil {
				w.problem(cp, "%s", short(err))
				return
			}
			if err != nil {
				w.problem(cp, "%s", short(err))
			}
			if len(w.res.Parts) >= w.l.MaxParts {
				w.problem(cp, "more than %d parts: the rest not looked at", w.l.MaxParts)
				return
			}
			w.entity(part, cp, depth+1)
		}
	}
	if p == "" {
		p = "1"
	}
	if len(w.res.Parts) >= w.l.MaxParts {
		w.problem(p, "more than %d parts: the rest not looked at", w.l.MaxParts)
		return
	}
	w.leaf(e, p, depth)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (w *walker) leaf(e *message.Entity, p string, depth int) {
	part := Part{Path: p, Header: e.Header}
	ct, params, err := e.Header.ContentType()
	if err != nil && e.Header.Has("Content-Type") {
		w.problem(p, "Content-Type: %s", short(err))
	}
	if e.Header.Has("Content-Type") {
		part.DeclaredType = strings.ToLower(ct)
	}
	_, dparams, _ := e.Header.ContentDisposition()
	part.Filename = dparams["filename"]
	if part.Filename == "" {
		part.Filename = params["name"]
	}
	data, err := io.ReadAll(io.LimitReader(e.Body, w.l.MaxPart))
	part.Size = int64(len(data))
	complete := err == nil
	if err == nil {
		// Past the cap the part is counted, not kept.
		n, rerr := io.Copy(io.Discard, e.Body)
		part.Size += n
		if n > 0 {
			complete = false
		}
		err = rerr
	}
	if err != nil {
		part.Problem = short(err)
		w.problem(p, "body: %s", part.Problem)
	}
	if len(data) > 0 && w.l.DetectTypes {
		part.DetectedType = media(mimetype.Detect(data).String())
	}
	isText := strings.HasPrefix(part.DeclaredType, "text/") || part.DeclaredType == ""
	if isText {
		t := data
		if int64(len(t)) > w.l.MaxText {
			t = t[:w.l.MaxText]
		}
		part.Text = t
	}
	if part.DeclaredType == "message/rfc822" && len(data) > 0 && complete {
		if sub, err := message.ReadWithOptions(bytes.NewReader(data), &message.ReadOptions{MaxHeaderBytes: 1 << 20}); sub != nil {
			if err != nil {
				w.problem(p, "%s", short(err))
			}
			w.entity(sub, p, depth+1)
			return
		} else {
			w.problem(p, "message/rfc822: %s", short(err))
		}
	}
	if isZip(data, part) {
		if !complete {
			w.problem(p, "zip: larger than %d bytes, not listed", w.l.MaxPart)
		} else {
			budget := w.l.ZipEntries
			part.ZipNames = w.zip(data, p, "", 1, &budget)
		}
	}
	w.res.Parts = append(w.res.Parts, part)
}

func media(s string) string {
	s, _, _ = strings.Cut(s, ";")
	return strings.ToLower(strings.TrimSpace(s))
}

func isZip(data []byte, p Part) bool {
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte("PK\x05\x06")) {
		return true
	}
	return p.DeclaredType == "application/zip" || strings.HasSuffix(strings.ToLower(p.Filename), ".zip")
}

// zip lists the names in the archive data, opening archives inside it
// within the limits; prefix is the path of the archive inside its parent.
func (w *walker) zip(data []byte, p, prefix string, depth int, budget *int) []string {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		w.problem(p, "zip%s: %s", at(prefix), short(err))
		return nil
	}
	var names []string
	for _, f := range zr.File {
		if *budget <= 0 {
			w.problem(p, "zip: more than %d names, the rest not listed", w.l.ZipEntries)
			return names
		}
		*budget--
		name := prefix + f.Name
		names = append(names, name)
		if !strings.HasSuffix(strings.ToLower(f.Name), ".zip") && f.FileInfo().IsDir() {
			continue
		}
		if !strings.HasSuffix(strings.ToLower(f.Name), ".zip") {
			continue
		}
		if depth >= w.l.ZipDepth {
			w.problem(p, "zip %s: nested deeper than %d, not opened", name, w.l.ZipDepth)
			continue
		}
		if f.CompressedSize64 > 0 && f.UncompressedSize64/f.CompressedSize64 > uint64(w.l.ZipRatio) {
			w.problem(p, "zip %s: expands %d times, not opened", name, f.UncompressedSize64/f.CompressedSize64)
			continue
		}
		if int64(f.UncompressedSize64) > w.l.ZipBytes-w.zipBytes {
			w.problem(p, "zip %s: over %d bytes decompressed, not opened", name, w.l.ZipBytes)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			w.problem(p, "zip %s: %s", name, short(err))
			continue
		}
		// The declared size may lie: read one byte more than it says.
		inner, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
		rc.Close()
		w.zipBytes += int64(len(inner))
		if err != nil || uint64(len(inner)) != f.UncompressedSize64 {
			if err == nil {
				err = errors.New("size differs from the one declared")
			}
			w.problem(p, "zip %s: %s", name, short(err))
			continue
		}
		names = append(names, w.zip(inner, p, name+"/", depth+1, budget)...)
	}
	return names
}

func at(prefix string) string {
	if prefix == "" {
		return ""
	}
	return " " + path.Clean(prefix)
}
