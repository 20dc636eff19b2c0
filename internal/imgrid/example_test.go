package imgrid_test

import (
	"fmt"

	"github.com/govae/govae/internal/imgrid"
)

func ExampleGrid_Render() {
	images := make([][]float32, 10)
	for i := range images {
		images[i] = make([]float32, 28*28)
	}
	g := imgrid.Grid{Rows: 28, Cols: 28, Columns: 5, Pad: 2, Scale: 3}
	m, err := g.Render(images)
	if err != nil {
		fmt.Println(err)
		return
	}
	// 5*28*3 + 6*2 wide, 2*28*3 + 3*2 high: padding is not scaled.
	fmt.Println(m.Bounds())
	// Output: (0,0)-(432,174)
}
