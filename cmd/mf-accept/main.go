// Command mf-accept decides whether a client and its envelope deserve to
// be accepted, mostly before DATA: HELO, reverse DNS, DNS lists, SPF,
// greylisting, limits and header sanity; at DATA it verifies DKIM and
// DMARC and writes Authentication-Results.
//
//	mf-accept check [--dry-run] < stream
//	mf-accept greylist show [PATTERN]
//	mf-accept greylist release TUPLE
//	mf-accept greylist expire
//
// See mf-accept(1).
package main

import (
	"context"
	"os"

	"mf/cmd/mf-accept/mfaccept"
)

func main() {
	os.Exit(mfaccept.Run(context.Background(), os.Stdin, os.Stdout, os.Stderr, os.Args[1:], os.LookupEnv))
}
