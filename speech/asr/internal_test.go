package asr

import (
	"strings"
	"testing"
)

func TestDerive(t *testing.T) {
	dict := map[string]string{"latte": "L AA T EY", "cappuccino": "K AE P AH CH IY N OW", "bus": "B AH S", "cup": "K AH P"}
	got, failed := derive([]string{"lattes", "cappuccinos", "buses", "cups", "zorbs"}, dict)
	want := map[string]string{"lattes": "L AA T EY Z", "cappuccinos": "K AE P AH CH IY N OW Z", "buses": "B AH S IH Z", "cups": "K AH P S"}
	for w, p := range want {
		if got[w] != p {
			t.Errorf("%s: %q, want %q", w, got[w], p)
		}
	}
	if strings.Join(failed, ",") != "zorbs" {
		t.Errorf("failed %q, want [zorbs]", failed)
	}
}

func TestShortNames(t *testing.T) {
	prons := map[string]string{"oat": "OW T", "socks": "S AA K S", "latte": "L AA T EY", "oat latte": "OW T L AA T EY", "tea": "T IY"}
	got := shortNames([]string{"latte", "tea", "oat", "oat latte", "socks", "scone"}, prons)
	if strings.Join(got, ",") != "oat,socks,tea" {
		t.Errorf("shortNames = %q, want [oat socks tea]", got)
	}
}

func TestWithGarbage(t *testing.T) {
	in := "#JSGF V1.0;\ngrammar g;\npublic <command> = buy <item>;\n<item> = tea | coffee;\n"
	out, err := withGarbage(in, 0.001)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "public ") != 1 || !strings.Contains(out, "public <utterance> = <command> | <garbage>;") ||
		!strings.Contains(out, "/0.001/ gbg_aa") || !strings.Contains(out, "\n<command> = buy <item>;") {
		t.Errorf("rewritten grammar:\n%s", out)
	}
	if _, err := withGarbage("#JSGF V1.0;\ngrammar g;\n<a> = b;\n", 0.1); err == nil {
		t.Error("a grammar without a public rule was rewritten")
	}
	if len(garbageWords()) != 39 {
		t.Errorf("%d garbage words, want 39", len(garbageWords()))
	}
}

func TestReadPronunciations(t *testing.T) {
	dict := "latte L AA T EY\nread R IY D\nread(2) R EH D\n\nbogus\ntea T IY\n"
	got, err := readPronunciations(strings.NewReader(dict), map[string]bool{"read": true, "tea": true, "absent": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["read"] != "R IY D" || got["tea"] != "T IY" {
		t.Errorf("got %v", got)
	}
}

func TestVocabulary(t *testing.T) {
	if got := vocabulary([]string{"a", "bb", "ccc"}, 7); got != "a, bb" {
		t.Errorf("%q", got)
	}
}
