package tape

import (
	"errors"
	"reflect"
	"runtime"
	"unsafe"

	G "gorgonia.org/gorgonia"
)

//go:linkname runall gorgonia.org/gorgonia.(*tapeMachine).runall
func runall(m unsafe.Pointer, errChan chan error, doneChan chan struct{})

// Machine is a tape machine with the channels its execution loop reports on.
type Machine struct {
	vm   G.VM
	m    unsafe.Pointer
	errc chan error
	done chan struct{}
}

// New wraps vm, which must come from G.NewTapeMachine without
// BindDualValues (see the package comment).
func New(vm G.VM) (*Machine, error) {
	rt := reflect.TypeOf(vm)
	if rt == nil || rt.Kind() != reflect.Pointer || rt.Elem().PkgPath() != "gorgonia.org/gorgonia" || rt.Elem().Name() != "tapeMachine" {
		return nil, errors.New("tape: not a gorgonia tape machine")
	}
	ptr := (*[2]unsafe.Pointer)(unsafe.Pointer(&vm))[1] // the interface's data word: the *tapeMachine
	// The pinned gorgonia's finalizer releases CUDA contexts and is empty
	// in this build, but while set it keeps the machine and all it reaches
	// (the graph, its values, a copy of the weights) alive for one more
	// collection after the machine is dropped, and the heap's goal grows
	// with them: a new graph per call of log p(x) made the live heap grow
	// with the number of calls.
	runtime.SetFinalizer(vm, nil)
	return &Machine{vm: vm, m: ptr, errc: make(chan error, 1), done: make(chan struct{}, 1)}, nil
}

// Run executes the program once from the start, as RunAll does, on the
// calling goroutine, and then resets the machine for the next run.
func (t *Machine) Run() error {
	defer t.vm.Reset()
	runall(t.m, t.errc, t.done)
	select {
	case err := <-t.errc:
		return err
	case <-t.done:
		return nil
	}
}

// VM is the wrapped machine.
func (t *Machine) VM() G.VM { return t.vm }
