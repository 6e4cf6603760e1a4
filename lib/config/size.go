package config

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a byte count as mf.conf writes one: N, or N with K, M
// or G for powers of 1024 ("10M").
func ParseSize(s string) (int64, error) {
	mult, n := int64(1), s
	switch {
	case strings.HasSuffix(n, "K"), strings.HasSuffix(n, "k"):
		mult, n = 1<<10, n[:len(n)-1]
	case strings.HasSuffix(n, "M"):
		mult, n = 1<<20, n[:len(n)-1]
	case strings.HasSuffix(n, "G"):
		mult, n = 1<<30, n[:len(n)-1]
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (want N, NK, NM or NG)", s)
	}
	return v * mult, nil
}
