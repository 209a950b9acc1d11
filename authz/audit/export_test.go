package audit

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func export(t *testing.T, f *fixture, from uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Export(context.Background(), f.store, &buf, from); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExportRoundTrip(t *testing.T) {
	f := tamperLog(t)
	out := export(t, f, 0)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 14 {
		t.Fatalf("%d lines, want 14", len(lines))
	}
	records, err := ReadExport(bytes.NewReader(out), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range records {
		if want := f.get(t, uint64(i+1)); !reflect.DeepEqual(r, want) {
			t.Fatalf("line %d: %+v, want %+v", i+1, r, want)
		}
	}
	rep := VerifyRecords(records, f.keys)
	wantProblems(t, rep)
	stored := f.verify(t, VerifyOptions{})
	if rep.Records != stored.Records || rep.Checkpoints != stored.Checkpoints || rep.LastHash != stored.LastHash {
		t.Fatalf("export report %+v, stored %+v", rep, stored)
	}
	streamed, err := VerifyOptions{}.VerifyExport(bytes.NewReader(out), f.keys)
	if err != nil || !reflect.DeepEqual(streamed, rep) {
		t.Fatalf("VerifyExport %+v, %v; VerifyRecords %+v", streamed, err, rep)
	}
	// Part of the log, from 7 on.
	part, err := ReadExport(bytes.NewReader(export(t, f, 7)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(part) != 8 || part[0].Seq != 7 {
		t.Fatalf("export from 7: %d records from %d", len(part), part[0].Seq)
	}
	wantProblems(t, VerifyOptions{From: 7}.VerifyRecords(part, f.keys))
	wantProblems(t, VerifyRecords(part, f.keys), at{1, ProblemMissing})
}

// TestVerifyExportTampering edits an export's lines: each change is found by seq.
func TestVerifyExportTampering(t *testing.T) {
	f := tamperLog(t)
	anchor, err := CheckpointOf(f.get(t, 12))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(export(t, f, 0)), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	tests := []struct {
		name  string
		lines func([]string) []string
		opts  VerifyOptions
		want  []at
	}{
		{"untouched", func(l []string) []string { return l }, VerifyOptions{Anchor: &anchor}, nil},
		{"amount edited", func(l []string) []string {
			l[2] = strings.Replace(l[2], `"amount":950,`, `"amount":9500,`, 1)
			return l
		}, VerifyOptions{}, []at{{3, ProblemEdited}}},
		{"two lines swapped", func(l []string) []string {
			l[7], l[8] = l[8], l[7]
			return l
		}, VerifyOptions{}, []at{{8, ProblemReordered}}},
		{"a line moved far down", func(l []string) []string {
			return append(append(append([]string{}, l[:1]...), l[2:]...), l[1])
		}, VerifyOptions{}, []at{{2, ProblemReordered}}},
		{"a line deleted", func(l []string) []string {
			return append(append([]string{}, l[:3]...), l[4:]...)
		}, VerifyOptions{}, []at{{4, ProblemMissing}}},
		{"a line repeated", func(l []string) []string {
			return append(append(append([]string{}, l[:5]...), l[4]), l[5:]...)
		}, VerifyOptions{}, []at{{5, ProblemReordered}}},
		{"tail cut, no anchor: not detectable", func(l []string) []string { return l[:11] }, VerifyOptions{}, nil},
		{"tail cut across the anchor", func(l []string) []string { return l[:11] },
			VerifyOptions{Anchor: &anchor}, []at{{12, ProblemTruncated}}},
		{"tail cut, known length", func(l []string) []string { return l[:13] },
			VerifyOptions{MinSeq: 14}, []at{{14, ProblemTruncated}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Join(tt.lines(append([]string{}, lines...)), "")
			records, err := ReadExport(strings.NewReader(in), 0)
			if err != nil {
				t.Fatal(err)
			}
			rep := tt.opts.VerifyRecords(records, f.keys)
			wantProblems(t, rep, tt.want...)
			streamed, err := tt.opts.VerifyExport(strings.NewReader(in), f.keys)
			if err != nil || !reflect.DeepEqual(streamed, rep) {
				t.Fatalf("VerifyExport %+v, %v; VerifyRecords %+v", streamed, err, rep)
			}
		})
	}
}

func TestReadExportRefuses(t *testing.T) {
	f := newFixture(t, nil, Config{})
	f.append(t, 3)
	good := string(export(t, f, 0))
	first := good[:strings.Index(good, "\n")+1]
	tests := []struct {
		name string
		in   string
		max  int
		line string // what the error must name
	}{
		{"line over 64 KiB", first + strings.Repeat(" ", MaxLineBytes+1) + "\n", 0, "line 2"},
		{"line over 64 KiB, last", first + strings.Repeat("x", 2*MaxLineBytes), 0, "line 2"},
		{"record over MaxRecordBytes", first + `{"seq":2,"kind":"consent","tx":"` + strings.Repeat("x", MaxRecordBytes) + `"}` + "\n", 0, "line 2"},
		{"empty line", first + "\n" + first, 0, "line 2"},
		{"not JSON", first + "seq=2\n", 0, "line 2"},
		{"unknown field", first + `{"seq":2,"extra":1}` + "\n", 0, "line 2"},
		{"two records on a line", strings.TrimSuffix(first, "\n") + first, 0, "line 1"},
		{"more than max", good, 2, "line 3"},
		{"negative max", good, -1, "max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadExport(strings.NewReader(tt.in), tt.max)
			if !errors.Is(err, ErrExport) || !strings.Contains(err.Error(), tt.line) {
				t.Fatalf("error %v, want ErrExport naming %q", err, tt.line)
			}
		})
	}
	// A last line without a newline is fine.
	if recs, err := ReadExport(strings.NewReader(strings.TrimSuffix(good, "\n")), 3); err != nil || len(recs) != 3 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
}

func TestExportRefusesGarbage(t *testing.T) {
	f := newFixture(t, nil, Config{})
	f.append(t, 2)
	f.set(t, RecordKey(2), []byte("not json"))
	if err := Export(context.Background(), f.store, &bytes.Buffer{}, 0); err == nil ||
		!strings.Contains(err.Error(), string(RecordKey(2))) {
		t.Fatalf("error %v, want one naming the key", err)
	}
}
