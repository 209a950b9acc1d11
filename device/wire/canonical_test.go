package wire_test

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/earshot/earshot/device/wire"
)

func canon(t *testing.T, in string) string {
	t.Helper()
	out, err := wire.Canonicalize([]byte(in))
	if err != nil {
		t.Fatalf("Canonicalize(%q): %v", in, err)
	}
	return string(out)
}

func TestCanonicalizeRFC8785Examples(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			// RFC 8785 section 3.2.2: whitespace, literals, numbers, string escapes.
			name: "section 3.2.2",
			in: `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],` +
				`"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			// RFC 8785 section 3.2.3: members sorted by UTF-16 code units, so the
			// non-BMP U+1F600 (a surrogate pair, 0xD83D...) sorts before U+FB33.
			name: "section 3.2.3 sorting",
			in: `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`,
			want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\"," +
				"\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\"," +
				"\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canon(t, tt.in); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalizeSortsByUTF16(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"b":1,"a":2,"A":3,"":4}`, `{"":4,"A":3,"a":2,"b":1}`},
		{`{"aa":1,"a":2,"ab":3}`, `{"a":2,"aa":1,"ab":3}`},
		// U+FFFF (one code unit 0xFFFF) sorts after U+10000 (0xD800 0xDC00), unlike in
		// UTF-8 or code point order.
		{"{\"\uffff\":1,\"\U00010000\":2}", "{\"\U00010000\":2,\"\uffff\":1}"},
		{"{\"\U0001F600\":1,\"\ue000\":2,\"\ud7ff\":3}", "{\"\ud7ff\":3,\"\U0001F600\":1,\"\ue000\":2}"},
		// Nested objects are sorted too; arrays keep their order.
		{`{"z":{"y":1,"x":[3,1,2]},"a":[{"d":1,"c":2}]}`, `{"a":[{"c":2,"d":1}],"z":{"x":[3,1,2],"y":1}}`},
	}
	for _, tt := range tests {
		if got := canon(t, tt.in); got != tt.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestCanonicalizeNumbersAppendixB uses the number samples of RFC 8785 appendix B that
// JSON can represent (NaN and Infinity cannot).
func TestCanonicalizeNumbersAppendixB(t *testing.T) {
	tests := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"}, // minus zero
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"}, // round to even
	}
	for _, tt := range tests {
		f := math.Float64frombits(tt.bits)
		t.Run(strconv.FormatUint(tt.bits, 16), func(t *testing.T) {
			if tt.bits == 0x8000000000000000 {
			}
			// Every spelling of the same double canonicalises the same way.
			for _, in := range []string{
				strconv.FormatFloat(f, 'g', -1, 64),
				strconv.FormatFloat(f, 'e', 20, 64),
				strconv.FormatFloat(f, 'E', -1, 64),
			} {
				if got := canon(t, in); got != tt.want {
					t.Errorf("Canonicalize(%s) = %s, want %s", in, got, tt.want)
				}
			}
		})
	}
}

func TestCanonicalizeNumbers(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1", "1"},
		{"-1", "-1"},
		{"1.0", "1"},
		{"-1.50", "-1.5"},
		{"100", "100"},
		{"1e2", "100"},
		{"1E+2", "100"},
		{"0.1", "0.1"},
		{"1e-6", "0.000001"},
		{"1e-7", "1e-7"},
		{"1.5e-7", "1.5e-7"},
		{"1e20", "100000000000000000000"},
		{"1e21", "1e+21"},
		{"123456789012345678901234567890", "1.2345678901234568e+29"},
		{"9007199254740993", "9007199254740992"}, // 2^53+1 is not a double
		{"1e-400", "0"},                          // underflows to zero
		{"[0.5,-0.25,3]", "[0.5,-0.25,3]"},
	}
	for _, tt := range tests {
		if got := canon(t, tt.in); got != tt.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	for _, in := range []string{"1e400", "-1e400", "[1e309]"} {
		if out, err := wire.Canonicalize([]byte(in)); err == nil {
			t.Errorf("Canonicalize(%s) = %s, want an error (not a finite double)", in, out)
		}
	}
}

func TestCanonicalizeStrings(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"plain"`, `"plain"`},
		{`"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
		{`"\u0008\u000C\u000A\u000D\u0009"`, `"\b\f\n\r\t"`},
		{`"\u0000\u0001\u001F"`, `"\u0000\u0001\u001f"`},
		{`"\u0020\u007f"`, "\" \x7f\""},        // DEL is not escaped
		{`"\"\\\/"`, `"\"\\/"`},                // solidus is not escaped
		{`"\u00e9\u00E9é"`, `"ééé"`},           // non-ASCII as UTF-8
		{`"\u2028\u2029"`, "\"\u2028\u2029\""}, // not escaped (ECMAScript JSON.stringify)
		{`"\ud83d\ude00"`, "\"\U0001F600\""},   // surrogate pair to one UTF-8 sequence
		{`"<&>"`, `"<&>"`},                     // no HTML escaping
		{`"\u003c\u0026\u003e"`, `"<&>"`},
	}
	for _, tt := range tests {
		if got := canon(t, tt.in); got != tt.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalizeLiteralsAndWhitespace(t *testing.T) {
	tests := []struct{ in, want string }{
		{" true ", "true"},
		{"false", "false"},
		{"\tnull\n", "null"},
		{"{ }", "{}"},
		{"[ ]", "[]"},
		{"{ \"a\" : [ 1 , { } , [ ] , \"x\" ] }", `{"a":[1,{},[],"x"]}`},
	}
	for _, tt := range tests {
		if got := canon(t, tt.in); got != tt.want {
			t.Errorf("Canonicalize(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalizeRefuses(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"whitespace", "  "},
		{"duplicate key", `{"a":1,"a":2}`},
		{"duplicate key same value", `{"a":1,"a":1}`},
		{"duplicate key after unescaping", `{"a":1,"\u0061":2}`},
		{"duplicate key nested", `{"x":[{"b":1,"c":0,"b":1}]}`},
		{"unterminated object", `{"a":1`},
		{"unterminated array", `[1,2`},
		{"unterminated string", `"abc`},
		{"trailing comma in array", `[1,]`},
		{"trailing comma in object", `{"a":1,}`},
		{"missing colon", `{"a" 1}`},
		{"key not a string", `{1:2}`},
		{"missing comma", `[1 2]`},
		{"single quotes", `'a'`},
		{"bare word", `nul`},
		{"NaN", `NaN`},
		{"Infinity", `[Infinity]`},
		{"leading plus", `+1`},
		{"second value", `{} {}`},
		{"second literal", `1 2`},
		{"control character in string", "\"a\x01b\""},
		{"too large", `"` + strings.Repeat("a", wire.MaxFrameBytes) + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := wire.Canonicalize([]byte(tt.in))
			if err == nil {
				t.Errorf("Canonicalize(%.40q) = %s, want an error", tt.in, out)
			}
			if tt.name == "too large" && !errors.Is(err, wire.ErrTooLarge) {
				t.Errorf("error %v is not ErrTooLarge", err)
			}
		})
	}
}

// TestCanonicalizeRefusesTrailingGarbage: input that is not one JSON value must be
// refused, however it continues.
func TestCanonicalizeRefusesTrailingGarbage(t *testing.T) {
	for _, in := range []string{`{}x`, `[1]]`, `{"a":1}}`, `"a"'`, `1,`, `0x10`} {
		if out, err := wire.Canonicalize([]byte(in)); err == nil {
			t.Errorf("Canonicalize(%s) = %s, want an error", in, out)
		}
	}
}

func TestCanonicalizeNesting(t *testing.T) {
	nest := func(depth int, open, close string) string {
		return strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth)
	}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"arrays 16", nest(16, "[", "]"), true},
		{"arrays 32", nest(32, "[", "]"), true},
		{"objects 32", nest(32, `{"a":`, "}"), true},
		{"mixed 32", nest(16, `[{"a":`, "}]"), true},
		{"arrays 64", nest(64, "[", "]"), false},
		{"objects 64", nest(64, `{"a":`, "}"), false},
		{"arrays 10000", nest(10000, "[", "]"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := wire.Canonicalize([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("Canonicalize: %v, want ok %v", err, tt.ok)
			}
			if tt.ok && string(out) != tt.in {
				t.Errorf("Canonicalize changed an already canonical value")
			}
		})
	}
}

// TestCanonicalizeIdempotent: canonical JSON is a fixed point.
func TestCanonicalizeIdempotent(t *testing.T) {
	inputs := []string{
		`{"b":[1.0,2e3,"\u00e9"],"a":{"d":null,"c":true}}`,
		`[-0.0000033333333333333333,1e+21,5e-324]`,
		"{\"\U0001F600\":1,\"\ufb33\":2,\"\\r\":3}",
		goldenCanonical,
	}
	for _, in := range inputs {
		once := canon(t, in)
		if twice := canon(t, once); twice != once {
			t.Errorf("not idempotent:\n%s\n%s", once, twice)
		}
	}
}
