package grammar

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// DefaultDictBytes bounds LoadDict when maxBytes is not positive. The CMU dictionary
// PocketSphinx ships is about 3.2 MB.
const DefaultDictBytes = 16 << 20

// maxDictLine bounds one line of a dictionary.
const maxDictLine = 4096

// LoadDict reads a pronunciation dictionary in the CMU format PocketSphinx uses (a
// word, then its phones, one pronunciation a line; variants are written "word(2)";
// lines starting ";;;" are comments) and returns the set of its words, lower case.
// It reads at most maxBytes (DefaultDictBytes when not positive): a longer input, a
// line over 4 KiB or a line without phones is ErrBadDict.
func LoadDict(r io.Reader, maxBytes int64) (map[string]bool, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultDictBytes
	}
	cr := &countReader{r: io.LimitReader(r, maxBytes+1)}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 0, maxDictLine), maxDictLine)
	set := map[string]bool{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, ";;;") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%w: line %d: %q has no phones", ErrBadDict, n, clip(fields[0]))
		}
		for _, ph := range fields[1:] {
			if !isPhone(ph) {
				return nil, fmt.Errorf("%w: line %d: %q is not a phone", ErrBadDict, n, clip(ph))
			}
		}
		word := fields[0]
		if i := strings.LastIndexByte(word, '('); i > 0 && strings.HasSuffix(word, ")") {
			word = word[:i] // "read(2)"
		}
		set[strings.ToLower(word)] = true
	}
	if cr.n > maxBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadDict, maxBytes)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDict, err)
	}
	return set, nil
}

// isPhone reports whether s looks like a phone: upper-case letters, maybe a stress
// digit ("AH", "AH0").
func isPhone(s string) bool {
	if len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
