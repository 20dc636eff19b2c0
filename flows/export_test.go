package flows

// Node-by-node references for the fused planar and radial steps.
var (
	PlanarNodes = planarNodes
	RadialNodes = radialNodes
)

// FuseIAFStep switches the fused IAF chain (iafChainOp) on and off.
var FuseIAFStep = &fuseIAFStep
