package main

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func f2dTargetNamed(t *testing.T, name string) f2dTarget {
	t.Helper()
	for _, tg := range flows2dTargets {
		if tg.name == name {
			return tg
		}
	}
	t.Fatalf("no target %s", name)
	return f2dTarget{}
}

// The energies equal Rezende & Mohamed's Table 1 at points worked out by
// hand (w1 = sin(πz1/2), so w1(1) = 1, w1(0) = 0, w1(-1) = -1; w2(1) = 3,
// w3(1) = 1.5), and the wall adds ½((|z1| - 4)/0.2)² outside [-4, 4].
func TestFlows2DEnergiesAtHandComputedPoints(t *testing.T) {
	ln2 := math.Log(2)
	for _, c := range []struct {
		target string
		z1, z2 float64
		want   float64
		why    string
	}{
		{"U1", 0, 0, 12.5 + 50.0/9 - ln2, "½(2/0.4)² - ln(2e^{-½(2/0.6)²})"},
		{"U1", 0, 2, 50.0/9 - ln2, "on the ring; both modes equally far"},
		{"U1", 2, 0, -math.Log1p(math.Exp(-200.0 / 9)), "on the ring at a mode: -ln(1 + e^{-½(4/0.6)²})"},
		{"U1", -2, 0, -math.Log1p(math.Exp(-200.0 / 9)), "symmetric in z1"},
		{"U2", 1, 1, 0, "on the wave"},
		{"U2", 0, 0.4, 0.5, "one width above the wave"},
		{"U2", -1, 0, 3.125, "½((0 + 1)/0.4)²"},
		{"U2", 5, 1, 12.5, "on the wave, wall ½(1/0.2)²"},
		{"U2", -4.4, math.Sin(-2.2 * math.Pi), 2, "on the wave, wall ½(0.4/0.2)²"},
		{"U3", 1, -0.5, 0.5*math.Pow(1.5/0.35, 2) - ln2, "midway between the branches at z2 = w1 ± 1.5"},
		{"U3", 1, 1, -math.Log1p(math.Exp(-0.5 * math.Pow(3/0.35, 2))), "on the upper branch"},
		{"U3", 1, -2, -math.Log1p(math.Exp(-0.5 * math.Pow(3/0.35, 2))), "on the lower branch z2 = w1 - w2"},
		{"U4", 1, 1, -math.Log1p(math.Exp(-0.5 * math.Pow(1.5/0.35, 2))), "on the first branch"},
		{"U4", 1, -0.5, -math.Log1p(math.Exp(-0.5 * math.Pow(1.5/0.4, 2))), "on the second branch z2 = w1 - w3"},
	} {
		got := f2dTargetNamed(t, c.target).u(c.z1, c.z2)
		if math.Abs(got-c.want) > 1e-12*(1+math.Abs(c.want)) {
			t.Errorf("%s(%g, %g) = %.15g, want %.15g (%s)", c.target, c.z1, c.z2, got, c.want, c.why)
		}
	}
}

// The graph energy (what training differentiates) equals the Go energy
// (what the figures and log Z use), inside and outside the wall, and its
// gradient matches central differences of the Go energy.
func TestFlows2DGraphEnergyMatchesGo(t *testing.T) {
	const B, h = 64, 1e-6
	rng := rand.New(rand.NewPCG(1, 2))
	z := make([]float64, 2*B)
	for i := range z {
		z[i] = 3 * rng.NormFloat64()
	}
	for _, tg := range flows2dTargets {
		t.Run(tg.name, func(t *testing.T) {
			g := G.NewGraph()
			zn := G.NewMatrix(g, tensor.Float64, G.WithShape(B, 2), G.WithName("z"),
				G.WithValue(tensor.New(tensor.WithShape(B, 2), tensor.WithBacking(append([]float64(nil), z...)))))
			u := tg.energyNode(zn)
			sum, err := G.Sum(u)
			if err != nil {
				t.Fatal(err)
			}
			grads, err := G.Grad(sum, zn)
			if err != nil {
				t.Fatal(err)
			}
			var uv, gv G.Value
			G.Read(u, &uv)
			G.Read(grads[0], &gv)
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			got, grad := uv.Data().([]float64), gv.Data().([]float64)
			for i := range B {
				z1, z2 := z[2*i], z[2*i+1]
				want := tg.u(z1, z2)
				if math.Abs(got[i]-want) > 1e-9*(1+math.Abs(want)) {
					t.Errorf("U(%g, %g): graph %.12g, Go %.12g", z1, z2, got[i], want)
				}
				fd1 := (tg.u(z1+h, z2) - tg.u(z1-h, z2)) / (2 * h)
				fd2 := (tg.u(z1, z2+h) - tg.u(z1, z2-h)) / (2 * h)
				for k, fd := range []float64{fd1, fd2} {
					if math.Abs(grad[2*i+k]-fd) > 1e-5*(1+math.Abs(fd)) {
						t.Errorf("dU/dz%d at (%g, %g): graph %.8g, finite difference %.8g", k+1, z1, z2, grad[2*i+k], fd)
					}
				}
			}
		})
	}
}

// The quadrature gives the closed-form normalizers of U2-U4 with the wall:
// for each z1 the z2 integral is a Gaussian's (two for U3 and U4), and the
// z1 integral is 8 plus the wall's two half-Gaussian tails, 0.2 √(2π).
func TestFlows2DLogZ(t *testing.T) {
	s := math.Sqrt(2 * math.Pi)
	width := 2*flows2dWall + flows2dWallScale*s
	for name, want := range map[string]float64{
		"U2": math.Log(0.4 * s * width),
		"U3": math.Log(2 * 0.35 * s * width),
		"U4": math.Log((0.4 + 0.35) * s * width),
	} {
		got := f2dTargetNamed(t, name).logZ(8, 2000)
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s: log Z %.9f by quadrature, %.9f in closed form", name, got, want)
		}
	}
}

// On a target every family can represent exactly (a Gaussian, matched by
// the base with the flows at the identity), a short fit drives the KL
// estimate to about 0, and never below it by more than its noise: the
// log-densities, log-determinants and log Z agree in sign and scale.
func TestFlows2DFitRecoversGaussian(t *testing.T) {
	gauss := f2dTarget{
		name: "gauss",
		u:    func(z1, z2 float64) float64 { return 0.5*f2dSq((z1-1)/0.5) + 0.5*f2dSq((z2+0.5)/1.5) },
		node: func(z1, z2 *G.Node) *G.Node {
			return f2dN(G.Add(f2dHalfSq(z1, 1, 0.5), f2dHalfSq(z2, -0.5, 1.5)))
		},
	}
	logZ := math.Log(2 * math.Pi * 0.5 * 1.5)
	if got := gauss.logZ(8, 1000); math.Abs(got-logZ) > 1e-6 {
		t.Fatalf("quadrature log Z %.8f, want %.8f", got, logZ)
	}
	for _, f := range flows2dFamilies {
		t.Run(string(f), func(t *testing.T) {
			s := f2dSpec{family: f, K: 2, target: gauss, iters: 1500, evalN: 20000}
			r, err := f2dFit(context.Background(), s, 7, func(string, ...any) {})
			if err != nil {
				t.Fatal(err)
			}
			kl := r.energy + logZ
			t.Logf("KL %.4f ± %.4f", kl, r.energySE)
			if kl < -4*r.energySE || kl > 0.03 {
				t.Errorf("KL %.4f ± %.4f after fitting a Gaussian, want ≈ 0", kl, r.energySE)
			}
		})
	}
}

// Quick sizes run end to end and write the five figures and the table.
func TestFlows2DQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 10 small fits")
	}
	e := &env{Quick: true, Out: t.TempDir(), Seed: 1, Log: f2dTestLog{t}}
	body, err := runFlows2D(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| U1 | planar |", "| U2 | IAF |", "| U1 | Sylvester |", "| U2 | Householder |",
		"flows2d_radial.png", "flows2d_sylvester.png", "flows2d_householder.png", "log Z"} {
		if !strings.Contains(body, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// f2dTestLog sends progress lines to the test log.
type f2dTestLog struct{ t *testing.T }

func (w f2dTestLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
