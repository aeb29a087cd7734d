package curve

// pinned42 is Generate(Params{Seed: 42}) as first released.
func pinned42() Curve {
	return Curve{KFold: 4, Congruency: 3, Wheels: []Wheel{
		{Radius: 1, Frequency: -1, Phase: 3.9673970287625275, Shape: Ellipse, Aspect: 1.3790359194291957},
		{Radius: 0.6666666666666666, Frequency: 3, Phase: 3.0900287251652587, Shape: Tetracuspid, Aspect: 0},
		{Radius: 0.4, Frequency: -5, Phase: 1.064941021933096, Shape: Triangle, Aspect: 0},
		{Radius: 0.18181818181818182, Frequency: 11, Phase: 6.190076945647409, Shape: Square, Aspect: 0},
		{Radius: 0.10166787875858914, Frequency: -17, Phase: 1.8853792592977259, Shape: Triangle, Aspect: 0},
		{Radius: 0.05005299177591378, Frequency: -21, Phase: 0.5082471106322396, Shape: Tetracuspid, Aspect: 0},
		{Radius: 0.04018756417672286, Frequency: 23, Phase: 3.33258498572461, Shape: Tetracuspid, Aspect: 0},
		{Radius: 0.02695627984055559, Frequency: -25, Phase: 6.033932289792601, Shape: Circle, Aspect: 0},
		{Radius: 0.01939833530427225, Frequency: 27, Phase: 5.592165015242046, Shape: Ellipse, Aspect: 1.6663675092199715},
		{Radius: 0.011116932038059234, Frequency: -33, Phase: 2.4929844574583306, Shape: Tetracuspid, Aspect: 0},
		{Radius: 0.0058714600413754935, Frequency: -41, Phase: 3.61663773598431, Shape: Square, Aspect: 0},
		{Radius: 0.003497565668918675, Frequency: 43, Phase: 1.1253122449163226, Shape: Triangle, Aspect: 0},
		{Radius: 0.0018035982765604057, Frequency: -57, Phase: 5.902254910483691, Shape: Tetracuspid, Aspect: 0},
	}}
}
