package data_test

import (
	"fmt"
	"log"

	"github.com/govae/govae/data"
)

// A training loop: carve a validation set, then walk the batches of each
// epoch. Any batch can be recomputed from (seed, epoch, batch), which is all
// a checkpoint needs to resume mid-epoch.
func ExampleLoader() {
	// Ten 2x2 images; normally these come from data.Load.
	imgs := &data.Images{N: 10, Channels: 1, Rows: 2, Cols: 2, Pix: make([]uint8, 40)}
	for i := range imgs.Pix {
		imgs.Pix[i] = uint8(i * 6)
	}
	train, valid, err := data.ValidationSplit(imgs.N, 2, 1)
	if err != nil {
		log.Fatal(err)
	}
	l, err := data.NewLoader(imgs, train, data.LoaderOptions{
		Batch: 3, Seed: 1, Shuffle: true, Binarize: data.BinarizeDynamic,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d training, %d validation examples; %d batches of up to %d rows of %d\n",
		l.Len(), len(valid), l.NumBatches(), l.BatchSize(), l.Dim())

	x := make([]float32, l.BatchSize()*l.Dim())
	for epoch := range 2 {
		for b := range l.NumBatches() {
			n, err := l.Batch(epoch, b, x)
			if err != nil {
				log.Fatal(err)
			}
			_ = x[:n*l.Dim()] // the model's input
			if epoch == 0 {
				fmt.Printf("epoch %d batch %d: %d rows\n", epoch, b, n)
			}
		}
	}
	// Output:
	// 8 training, 2 validation examples; 3 batches of up to 3 rows of 4
	// epoch 0 batch 0: 3 rows
	// epoch 0 batch 1: 3 rows
	// epoch 0 batch 2: 2 rows
}

func ExampleParseBinarization() {
	for _, s := range []string{"dynamic", "Static", "grey"} {
		b, err := data.ParseBinarization(s)
		fmt.Println(b, err)
	}
	// Output:
	// dynamic <nil>
	// static <nil>
	// none data: unknown binarization "grey" (want none, static or dynamic)
}

// Loading a dataset by name: the files come from $GOVAE_DATA, the user
// cache, the GoMNIST module (for mnist) or Debian's package, or are
// downloaded. Description says which copy it is.
func ExampleLoad() {
	ds, err := data.Load("mnist", data.LoadOptions{Offline: true})
	if err != nil {
		fmt.Println("no MNIST here")
		return
	}
	fmt.Println(ds.Description())
	fmt.Println(ds.Train.Images.Channels, ds.Train.Images.Rows, ds.Train.Images.Cols)
}

// Any folder of PNG or JPEG images, one sub-folder per class, loads with an
// explicit directory; here every image becomes 3 x 32 x 32 (centre crop and
// resize), channel-major, and 10% are held out for testing.
func ExampleLoad_imageFolder() {
	ds, err := data.Load("", data.LoadOptions{
		Dir:    "photos",
		Images: data.ImageFolderOptions{Rows: 32, Cols: 32, Channels: 3},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	x := ds.Train.Images
	fmt.Println(ds.Kind, ds.Classes, x.N, x.Channels, x.Rows, x.Cols)
	// Pixel (c, y, x) of image i, in [0, 255]:
	_ = x.Image(0)[0*x.Plane()+0*x.Cols+0]
}
