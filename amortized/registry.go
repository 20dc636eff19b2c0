package amortized

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Parsers of the parts, by the name before the first ':' of a config
// string. Each gets the arguments after the name (split at ':') and the
// configuration being normalized (DataDim, Latent, the image shape and
// Activation are already valid and filled in), and returns the part or an
// error saying what is wrong with the arguments.
type (
	FamilyParser     func(args []string, c Config) (Family, error)
	PriorParser      func(args []string, c Config) (Prior, error)
	LikelihoodParser func(args []string, c Config) (Likelihood, error)
	TrunkParser      func(args []string, c Config) (Trunk, error)
)

// registry holds every kind of part; a user's parts register from their
// own package's init, the built-ins from this package's files.
var registry = struct {
	sync.RWMutex
	families    map[string]FamilyParser
	priors      map[string]PriorParser
	likelihoods map[string]LikelihoodParser
	trunks      map[string]TrunkParser
	kls         map[[2]string]klEntry
	forms       map[string]string // "kind/name" -> the forms, for error messages
}{
	families: map[string]FamilyParser{}, priors: map[string]PriorParser{},
	likelihoods: map[string]LikelihoodParser{}, trunks: map[string]TrunkParser{},
	kls: map[[2]string]klEntry{}, forms: map[string]string{},
}

type klEntry struct {
	fn     KL
	perDim bool
}

func register[P any](m map[string]P, kind, name, forms string, p P) {
	registry.Lock()
	defer registry.Unlock()
	if name == "" || strings.ContainsAny(name, ": \t\n\"") {
		panic(fmt.Sprintf("amortized: Register%s: invalid name %q", kind, name))
	}
	if _, dup := m[name]; dup {
		panic(fmt.Sprintf("amortized: Register%s: %q registered twice", kind, name))
	}
	m[name] = p
	registry.forms[kind+"/"+name] = forms
}

// RegisterFamily registers a posterior family under name, the part of
// Config.Posterior before any ':'; forms describes the accepted strings for
// error messages ("planar:K"). It panics on a duplicate or invalid name
// (call it from an init function).
func RegisterFamily(name, forms string, p FamilyParser) {
	register(registry.families, "Family", name, forms, p)
}

// RegisterPrior registers a prior under name (Config.Prior).
func RegisterPrior(name, forms string, p PriorParser) {
	register(registry.priors, "Prior", name, forms, p)
}

// RegisterLikelihood registers a likelihood under name (Config.Likelihood).
func RegisterLikelihood(name, forms string, p LikelihoodParser) {
	register(registry.likelihoods, "Likelihood", name, forms, p)
}

// RegisterTrunk registers a trunk under name (Config.Trunk).
func RegisterTrunk(name, forms string, p TrunkParser) {
	register(registry.trunks, "Trunk", name, forms, p)
}

// RegisterKL registers the closed-form KL(q || p) of the family and prior
// registered under those names; perDim says it returns the KL per latent
// dimension too (see [KL]). A pair without one uses the Monte Carlo
// estimate log q(z|x) - log p(z) at the sampled z.
func RegisterKL(family, prior string, perDim bool, kl KL) {
	registry.Lock()
	defer registry.Unlock()
	k := [2]string{family, prior}
	if _, dup := registry.kls[k]; dup {
		panic(fmt.Sprintf("amortized: RegisterKL: (%q, %q) registered twice", family, prior))
	}
	registry.kls[k] = klEntry{kl, perDim}
}

// SplitPart splits a part's config string "name:arg1:arg2" into its name
// and arguments.
func SplitPart(s string) (name string, args []string) {
	f := strings.Split(s, ":")
	return f[0], f[1:]
}

// PartNames lists the registered names of a kind ("family", "prior",
// "likelihood", "trunk"), sorted, with the forms they accept.
func PartNames(kind string) []string {
	registry.RLock()
	defer registry.RUnlock()
	var out []string
	prefix := strings.ToUpper(kind[:1]) + kind[1:] + "/"
	for k, forms := range registry.forms {
		if name, ok := strings.CutPrefix(k, prefix); ok {
			if forms == "" {
				forms = name
			}
			out = append(out, forms)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		ra, rb := builtinRank(a), builtinRank(b)
		if ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return out
}

// builtinRank orders the built-in families and priors as the
// documentation lists them, before any other part.
func builtinRank(forms string) int {
	name, _ := SplitPart(forms)
	if i := slices.Index([]string{Diagonal, FullCov, Planar, Radial, IAF, StandardNormal, MixturePrior, VampPrior}, name); i >= 0 {
		return i
	}
	return 100
}

func parsePart[T, P any](m map[string]P, kind, field, s string, call func(P, []string) (T, error)) (T, error) {
	var zero T
	name, args := SplitPart(s)
	registry.RLock()
	p, ok := m[name]
	registry.RUnlock()
	want := strings.Join(PartNames(strings.ToLower(kind)), ", ")
	if !ok {
		return zero, fmt.Errorf("%s %q: unknown %s %q; want %s", field, s, strings.ToLower(kind), name, want)
	}
	v, err := call(p, args)
	if err != nil {
		return zero, fmt.Errorf("%s %q: %w; want %s", field, s, err, want)
	}
	return v, nil
}

func parseFamily(s string, c Config) (Family, error) {
	return parsePart(registry.families, "Family", "posterior", s, func(p FamilyParser, a []string) (Family, error) { return p(a, c) })
}

func parsePrior(s string, c Config) (Prior, error) {
	return parsePart(registry.priors, "Prior", "prior", s, func(p PriorParser, a []string) (Prior, error) { return p(a, c) })
}

func parseLikelihood(s string, c Config) (Likelihood, error) {
	return parsePart(registry.likelihoods, "Likelihood", "likelihood", s, func(p LikelihoodParser, a []string) (Likelihood, error) { return p(a, c) })
}

func parseTrunk(s string, c Config) (Trunk, error) {
	return parsePart(registry.trunks, "Trunk", "trunk", s, func(p TrunkParser, a []string) (Trunk, error) { return p(a, c) })
}

// lookupKL returns the closed-form KL of the pair, if registered.
func lookupKL(f Family, p Prior) (klEntry, bool) {
	fn, _ := SplitPart(f.String())
	pn, _ := SplitPart(p.String())
	registry.RLock()
	defer registry.RUnlock()
	e, ok := registry.kls[[2]string{fn, pn}]
	return e, ok
}

// noArgs is the parser check of a part that takes no arguments.
func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no parameters", name)
	}
	return nil
}

// countArg parses a positive count argument of at most limit.
func countArg(what, v string, limit int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > limit || strings.HasPrefix(v, "+") {
		return 0, fmt.Errorf("%s %q is not an integer from 1 to %d", what, v, limit)
	}
	return n, nil
}
