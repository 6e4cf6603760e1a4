// Command mf-bridge runs a chain of mf stages for each message an MTA
// receives, as a milter for sendmail and Postfix, and maps their verdicts
// and changes back to the MTA.
//
//	mf-bridge milter [--listen inet:127.0.0.1:7357 | unix:/run/mf/bridge.sock]
//	mf-bridge test [--client IP] [--helo NAME] [--from ADDR] [--rcpt ADDR]... [FILE]
//
// See mf-bridge(8).
package main

import (
	"context"
	"fmt"
	"os"

	"mf/lib/chain"
	"mf/lib/verdict"
)

func main() {
	// First, while still root if started so: see chain.Init.
	if err := chain.Init(); err != nil {
		fmt.Fprintf(os.Stderr, "mf-bridge: error: %v\n", err)
		os.Exit(verdict.ExitError)
	}
	os.Exit(run(context.Background(), os.Stdin, os.Stdout, os.Stderr, os.Args[1:], os.LookupEnv))
}
