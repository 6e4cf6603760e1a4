package chain

import (
	"strings"
	"testing"
)

// An empty program word would start nothing and tempfail every message:
// it is refused where the line is read.
func TestParseEmptyProgram(t *testing.T) {
	for _, line := range []string{`x data ""`, `x data -- ""`, `x data timeout=1s '' arg`} {
		_, err := Parse(line)
		if err == nil || !strings.Contains(err.Error(), "empty program") {
			t.Errorf("Parse(%q) = %v, want an empty program error", line, err)
		}
	}
}
