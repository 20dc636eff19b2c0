package cores

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestHoldNestsAndReleasesOnce(t *testing.T) {
	if !Spare() {
		t.Fatal("cores held at start")
	}
	r1 := Hold()
	r2 := Hold()
	r1()
	r1() // a second call must not release r2's hold
	if Spare() {
		t.Fatal("Spare with one hold left")
	}
	r2()
	if !Spare() {
		t.Fatal("not Spare after every hold was released")
	}
}

// TestRunCallsEachIndexOnce runs many rounds of Run, back to back (helpers
// spinning) and after pauses (helpers parked), and checks every index ran
// exactly once per round and that Run returned only after all of them.
func TestRunCallsEachIndexOnce(t *testing.T) {
	for round := 0; round < 300; round++ {
		n := 1 + round%7
		counts := make([]atomic.Int32, n)
		Run(n, func(i int) {
			if round%3 == 0 {
				time.Sleep(time.Duration(i) * 20 * time.Microsecond)
			}
			counts[i].Add(1)
		})
		for i := range counts {
			if c := counts[i].Load(); c != 1 {
				t.Fatalf("round %d: index %d ran %d times", round, i, c)
			}
		}
		if round%50 == 49 {
			time.Sleep(2 * spinFor) // let the helpers park
		}
	}
}
