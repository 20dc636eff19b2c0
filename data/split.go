package data

import (
	"fmt"
	"slices"
)

// ValidationSplit carves a validation set of the given size out of n
// training examples: a uniformly random subset chosen by seed. It returns the
// remaining training indices and the validation indices, each in increasing
// order (the Loader does the shuffling), together covering 0..n-1 once.
// size must be in [0, n); size 0 gives an empty validation set.
func ValidationSplit(n, size int, seed uint64) (train, valid []int, err error) {
	if n <= 0 {
		return nil, nil, fmt.Errorf("data: validation split of %d examples: need at least one", n)
	}
	if size < 0 || size >= n {
		return nil, nil, fmt.Errorf("data: validation size %d out of range [0, %d) for %d training examples", size, n, n)
	}
	p := make([]int, n)
	permute(p, streamKey(seed, tagSplit, 0))
	valid, train = p[:size:size], p[size:]
	slices.Sort(valid)
	slices.Sort(train)
	return train, valid, nil
}
