package flows

// Node-by-node references for the fused planar and radial steps.
var (
	PlanarNodes = planarNodes
	RadialNodes = radialNodes
)
