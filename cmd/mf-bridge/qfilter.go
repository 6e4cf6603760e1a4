package main

import (
	"context"
	"errors"
	"io"
)

// qfilterCmd runs a filter written for qmail-qfilter as a stage.
type qfilterCmd struct {
	Filter []string `arg:"" passthrough:"" help:"The filter and its arguments."`
}

func (b *bridge) qfilter(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, _ func(string) (string, bool)) (int, error) {
	return 0, errors.New("qfilter: not built yet")
}
