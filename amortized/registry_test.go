package amortized

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestSplitPart(t *testing.T) {
	name, args := SplitPart("iaf:2:41")
	if name != "iaf" || len(args) != 2 || args[0] != "2" || args[1] != "41" {
		t.Errorf("SplitPart(iaf:2:41) = %q, %q", name, args)
	}
	if name, args := SplitPart("diag"); name != "diag" || len(args) != 0 {
		t.Errorf("SplitPart(diag) = %q, %q", name, args)
	}
}

func TestRegistryListsBuiltins(t *testing.T) {
	for kind, want := range map[string]string{
		"family":     "diag, fullcov, planar:K, radial:K, iaf:K or iaf:K:H",
		"prior":      "normal, mog:K, vamp:K or vamp:K:data",
		"likelihood": "bernoulli, categorical, gaussian, logistic, logistic-mix:K, logistic-rgb:K",
		"trunk":      "conv:SPEC[;deconv:SPEC], mlp",
	} {
		got := strings.Join(PartNames(kind), ", ")
		// Other tests' parts (the Example's "isotropic") may be registered too.
		if !strings.HasPrefix(got, want) {
			t.Errorf("PartNames(%s) = %q, want it to start with %q", kind, got, want)
		}
	}
}

func TestRegisterRefusesDuplicatesAndBadNames(t *testing.T) {
	for name, f := range map[string]func(){
		"duplicate": func() {
			RegisterFamily(Diagonal, "", func([]string, Config) (Family, error) { return diagFamily{}, nil })
		},
		"colon": func() {
			RegisterPrior("a:b", "", func([]string, Config) (Prior, error) { return standardNormal{}, nil })
		},
		"empty":  func() { RegisterTrunk("", "", func([]string, Config) (Trunk, error) { return mlpTrunk{}, nil }) },
		"dup kl": func() { RegisterKL(Diagonal, StandardNormal, true, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// TestConfigParts: unknown parts are refused naming the field, the value
// and the registered forms; the defaults are not written into the JSON, so
// files of the default parts read the same in older programs.
func TestConfigParts(t *testing.T) {
	base := Config{DataDim: 4, Latent: 2}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Prior = "flow:3" }, `prior "flow:3": unknown prior "flow"; want normal, mog:K, vamp:K or vamp:K:data`},
		{func(c *Config) { c.Prior = "normal:1" }, `prior "normal:1": normal takes no parameters`},
		{func(c *Config) { c.Trunk = "resnet" }, `trunk "resnet": unknown trunk "resnet"; want conv:SPEC[;deconv:SPEC], mlp`},
		{func(c *Config) { c.Likelihood = "poisson" }, `likelihood "poisson": unknown likelihood "poisson"; want bernoulli, categorical, gaussian, logistic, logistic-mix:K, logistic-rgb:K`},
		{func(c *Config) { c.ImageRows, c.ImageCols, c.ImageChannels = 1, 2, 3 }, "image 1x2x3 does not match data_dim 4"},
	} {
		c := base
		tc.mod(&c)
		if _, err := c.Normalize(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", c, err, tc.want)
		}
	}
	c := base
	c.Prior, c.Trunk, c.ImageRows, c.ImageCols, c.ImageChannels = "normal", "mlp", 1, 2, 2
	n, err := c.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(n)
	if strings.Contains(string(js), `"prior"`) || strings.Contains(string(js), `"trunk"`) {
		t.Errorf("default parts written into the JSON: %s", js)
	}
	if n.Shape() != (Shape{Rows: 1, Cols: 2, Channels: 2}) {
		t.Errorf("Shape() = %+v", n.Shape())
	}
	if Config.Preprocess(Config{Likelihood: Gaussian}) != PreprocessGrey || (Config{}).Preprocess() != PreprocessBinarize {
		t.Error("Preprocess: want grey levels for gaussian, binarization for bernoulli")
	}
}

// TestNumParamsAllocatesNothing: counting a huge configuration (an IAF
// whose MADE masks alone would take hundreds of gigabytes) allocates
// nothing of its size.
func TestNumParamsAllocatesNothing(t *testing.T) {
	c := Config{DataDim: 784, Hidden: []int{400}, Latent: 20, Posterior: "iaf:1:2147483647"}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, err := c.NumParams()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	H := int64(2147483647)
	if n < 20*H+H*40+H*H {
		t.Errorf("NumParams = %d, want at least the MADE and the context map", n)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("NumParams allocated %d bytes", d)
	}
}
