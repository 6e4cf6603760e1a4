package mime

import (
	"bytes"
	"os"
	"testing"
)

func BenchmarkWalkNonspam(b *testing.B) {
	msg, _ := os.ReadFile("../../t/msg/nonspam.eml")
	for i := 0; i < b.N; i++ {
		Walk(bytes.NewReader(msg), DefaultLimits)
	}
}
