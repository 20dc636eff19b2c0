package cores

import "testing"

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
