// Command floor is mf-lists linked whole, as the command is, but copying
// stdin to stdout when given no arguments: what BenchmarkStart measures
// as the start of the binary itself (its size and its packages' init),
// before kong or the lists do anything.
package main

import (
	"context"
	"io"
	"os"

	"mf/cmd/mf-lists/mflists"
)

func main() {
	if len(os.Args) > 1 {
		os.Exit(mflists.Run(context.Background(), os.Stdin, os.Stdout, os.Stderr, os.Args[1:], os.LookupEnv))
	}
	io.Copy(os.Stdout, os.Stdin)
}
