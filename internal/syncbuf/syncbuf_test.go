package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("ab"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); len(got) != 1600 || strings.Count(got, "ab") != 800 {
		t.Fatalf("after 800 concurrent writes of \"ab\": %d bytes, %d pairs", len(got), strings.Count(got, "ab"))
	}
}

func TestTailKeepsTheNewest(t *testing.T) {
	tail := &Tail{Max: 8}
	for _, s := range []string{"  hello ", "world", "!\n"} {
		tail.Write([]byte(s))
	}
	// "  hello world!\n" keeps " world!\n", shown trimmed.
	if got := tail.String(); got != "world!" {
		t.Fatalf("Tail = %q, want \"world!\"", got)
	}
}
