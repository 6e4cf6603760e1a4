// Command mf-stat summarises sendmail, Postfix and qmail logs and mf-bridge
// decision records: totals, traffic per day and hour, domains, senders,
// rejects, deferrals, delays and mf verdicts, as text, JSON, CSV or HTML.
//
//	mf-stat [--since WHEN] [--until WHEN] [--json | --csv TABLE | --html] [FILE...]
//
// See mf-stat(1).
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Stdin, os.Stdout, os.Stderr, os.Args[1:], os.LookupEnv))
}
