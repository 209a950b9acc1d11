package wire

// KnownTypes returns every message type of protocol v1, for the external tests.
func KnownTypes() []Type {
	out := make([]Type, 0, len(knownTypes))
	for t := range knownTypes {
		out = append(out, t)
	}
	return out
}

// NamedCodes returns every code that has a name, with its name.
func NamedCodes() map[Code]string {
	out := make(map[Code]string, len(codeNames))
	for c, n := range codeNames {
		out[c] = n
	}
	return out
}
