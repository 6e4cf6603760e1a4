// Command mf-lists matches the client, HELO, sender, recipients and header
// From of a message against allow and block lists, as an mf stage.
//
//	mf-lists check [--dir DIR] [--list FILE]... < stream
//	mf-lists why [--client IP] [--from ADDR] [--rcpt ADDR]... [FILE]
//
// See mf-lists(1).
package main

import (
	"context"
	"os"

	"mf/cmd/mf-lists/mflists"
)

func main() {
	os.Exit(mflists.Run(context.Background(), os.Stdin, os.Stdout, os.Stderr, os.Args[1:], os.LookupEnv))
}
