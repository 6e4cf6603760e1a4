package stream

import (
	"bytes"
	"io"
	"slices"
)

// Parsed is a stream whose writer has its envelope parsed already: the
// envelope, the block Write made of it, and the message after. Read
// takes the envelope as it is instead of parsing the block again, which
// gives the same envelope (FuzzStreamRoundTrip); read as bytes, it is the
// block, then the message. mf-bridge hands one to each stage it runs
// inside its own process.
type Parsed struct {
	env     Envelope
	raw     []byte
	message io.Reader
	r       io.Reader
	read    bool // read from as bytes: Stream has nothing unread to give
}

// NewParsed writes env as a block and returns it with message (nil before
// data) as a stream. env is kept, not copied: the writer must leave it as
// it is; the reader is handed a copy of its own.
func NewParsed(env *Envelope, message io.Reader) (*Parsed, error) {
	var b bytes.Buffer
	if err := Write(&b, env); err != nil {
		return nil, err
	}
	if message == nil {
		message = bytes.NewReader(nil)
	}
	p := &Parsed{env: *env, raw: b.Bytes(), message: message}
	p.r = io.MultiReader(bytes.NewReader(p.raw), message)
	return p, nil
}

func (p *Parsed) Read(b []byte) (int, error) {
	p.read = true
	return p.r.Read(b)
}

// A Handover is a reader that can hand over the stream it carries as
// parsed: a Parsed, or a reader around one.
type Handover interface {
	// Stream returns the envelope, the block and the message after it,
	// unread; ok is false if there is none, or it was read as bytes.
	Stream() (env Envelope, raw []byte, message io.Reader, ok bool)
}

// Stream hands over the stream, once, unless it was read as bytes or
// its block is one Read refuses (longer than MaxEnvelope): reading that
// as bytes gives the same error as from a pipe.
func (p *Parsed) Stream() (env Envelope, raw []byte, message io.Reader, ok bool) {
	if p.read || len(p.raw) > MaxEnvelope {
		return Envelope{}, nil, nil, false
	}
	p.read = true
	return p.env.clone(), p.raw, p.message, true
}

// clone is env with slices of its own.
func (env Envelope) clone() Envelope {
	env.Rcpts = slices.Clone(env.Rcpts)
	env.Macros = slices.Clone(env.Macros)
	env.AddHeaders = slices.Clone(env.AddHeaders)
	env.Trace = slices.Clone(env.Trace)
	if env.Verdict != nil {
		v := *env.Verdict
		env.Verdict = &v
	}
	return env
}

// A Taker is a writer that takes the envelope of a stream written to it
// as parsed too, just before its block is written (a stage inside
// mf-bridge hands its output back so). The block written is raw.
type Taker interface {
	TakeEnvelope(env Envelope, raw []byte)
}

// A MessageTaker is a Taker that also takes the message back as it was
// given: a stage that passes the message on unchanged tells it so after
// the envelope's block instead of writing the message out, and mf-bridge
// goes on with the message it had, with no copy made by each stage (a
// copy that, past 1 MiB, was written to disk).
type MessageTaker interface {
	Taker
	TakeMessage()
}
