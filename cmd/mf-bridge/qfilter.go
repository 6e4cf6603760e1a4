package main

import (
	"errors"

	"mf/lib/cli"
)

// qfilterCmd runs a filter written for qmail-qfilter as a stage.
type qfilterCmd struct {
	Filter []string `arg:"" passthrough:"" help:"The filter and its arguments."`
}

func (cmd *qfilterCmd) Run(env *cli.Env) error {
	return errors.New("qfilter: not built yet")
}
