// Command mf-stage-supervisor is started by mf-bridge for each stage run,
// between it and the stage; it is not run by hand. See lib/supervise and
// mf-bridge(8).
package main

import (
	"os"

	"mf/lib/supervise"
)

func main() { os.Exit(supervise.Main(os.Args[1:])) }
