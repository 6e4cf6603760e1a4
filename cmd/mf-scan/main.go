// Command mf-scan runs a message past content scanners at the data
// phase: clamd, spamd, any program, and header, body and attachment
// rules, reading and walking the message once for all of them.
//
//	mf-scan check [--dry-run] < stream
//
// See mf-scan(1).
package main

import (
	"context"
	"os"

	"mf/cmd/mf-scan/mfscan"
)

func main() {
	os.Exit(mfscan.Run(context.Background(), os.Stdin, os.Stdout, os.Stderr, os.Args[1:], os.LookupEnv))
}
