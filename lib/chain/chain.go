package chain

import (
	"context"

	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// Chain is the configured stages, in order, and how they are run.
type Chain struct {
	Stages []*Stage
	Runner *Runner
}

// Any reports whether some stage runs at phase.
func (c *Chain) Any(phase stream.Phase) bool {
	for _, s := range c.Stages {
		if s.At(phase) {
			return true
		}
	}
	return false
}

// Outcome is what the stages of one phase did together.
type Outcome struct {
	Verdict verdict.Verdict  // the first final verdict, or Continue
	Results []*Result        // one per stage that ran, in order
	Env     stream.Envelope  // the envelope as the stages left it
	Message *spool.Message   // the message as the stages left it (data phase)
	spooled []*spool.Message // the stages' outputs, closed by Close
}

// Close lets go of the messages the stages wrote.
func (o *Outcome) Close() {
	for _, m := range o.spooled {
		m.Close()
	}
	o.spooled = nil
}

// Run runs the stages configured for env.Stage in order until one
// decides; after that only stages marked always run, and what they say is
// recorded but not heeded. Each stage sees the envelope and message as
// the stages before it left them. msg is the message at the data phase
// and is not closed.
func (c *Chain) Run(ctx context.Context, env stream.Envelope, msg *spool.Message) *Outcome {
	o := &Outcome{Verdict: verdict.Verdict{Action: verdict.Continue}, Env: env, Message: msg}
	decided := false
	for _, st := range c.Stages {
		if !st.At(env.Phase) || decided && !st.Always {
			continue
		}
		if ctx.Err() != nil {
			// The caller gave up (the bridge at its shutdown deadline):
			// the rest of the chain did not run, so the message is not
			// let through unscanned but refused for now.
			if !decided {
				o.Verdict = verdict.New(verdict.Tempfail, verdict.DefaultTempfail)
			}
			break
		}
		e := o.Env
		e.Verdict = nil
		res := c.Runner.Run(ctx, st, &e, o.Message)
		o.Results = append(o.Results, res)
		v := res.Verdict
		if decided || v.Action == verdict.Reject || v.Action == verdict.Tempfail {
			if res.Message != nil {
				res.Message.Close()
			}
			if !decided {
				o.Verdict, decided = v, true
			}
			continue
		}
		if res.Env != nil {
			stage := o.Env.Phase
			o.Env = *res.Env
			o.Env.Phase = stage
		}
		o.Env.AddHeaders = append(o.Env.AddHeaders, res.Headers...)
		if res.Message != nil {
			o.Message = res.Message
			o.spooled = append(o.spooled, res.Message)
		}
		if v.Action.Final() {
			o.Verdict, decided = v, true
		}
	}
	return o
}
