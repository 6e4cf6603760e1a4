// Command mf-quota counts mail per client, network, sender, domain, SMTP
// AUTH user or recipient in time windows, refuses what passes a limit,
// and keeps the server from taking more messages at once than it can.
//
//	mf-quota check [--dry-run] < stream
//	mf-quota show [KEY]
//	mf-quota reset KEY
//	mf-quota release < stream
//
// See mf-quota(1).
package main

import (
	"context"
	"os"

	"mf/cmd/mf-quota/mfquota"
)

func main() {
	os.Exit(mfquota.Run(context.Background(), os.Stdin, os.Stdout, os.Stderr, os.Args[1:], os.LookupEnv))
}
