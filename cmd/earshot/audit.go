package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/audit"
)

// auditCmd is "earshot audit export|verify".
func auditCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("audit: export or verify?")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("audit "+sub, flag.ContinueOnError)
	from := fs.Uint64("from", 1, "export: the first record")
	file := fs.String("file", "", "verify: an exported file instead of the gateway's store")
	jwks := fs.String("jwks", "", "verify --file: the key set (default: fetched from the gateway's /admin/v1/audit/jwks)")
	a, err := newAdmin(fs, args)
	if err != nil {
		return err
	}
	switch sub {
	case "export":
		return a.stream(fmt.Sprintf("/admin/v1/audit/export?from=%d", *from), stdout)
	case "verify":
		var rep audit.Report
		if *file == "" {
			if err := a.do(http.MethodGet, "/admin/v1/audit/verify", nil, &rep); err != nil {
				return err
			}
		} else if rep, err = verifyFile(a, *file, *jwks); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d records, %d checkpoints, last %d %s\n", rep.Records, rep.Checkpoints, rep.LastSeq, rep.LastHash)
		for _, p := range rep.Problems {
			fmt.Fprintf(stdout, "record %d: %s: %s\n", p.Seq, p.Kind, p.Detail)
		}
		if n := len(rep.Problems) + rep.MoreProblems; n > 0 {
			return fmt.Errorf("audit trail does not verify: %d problems", n)
		}
		fmt.Fprintln(stdout, "ok")
		return nil
	}
	return fmt.Errorf("audit: unknown subcommand %q (export or verify)", sub)
}

// verifyFile verifies an exported audit trail with a key set from a file or the gateway.
func verifyFile(a *adminClient, file, jwksFile string) (audit.Report, error) {
	var keys []byte
	var err error
	if jwksFile != "" {
		keys, err = readLimited(jwksFile, authz.MaxJWKSBytes)
	} else {
		var raw json.RawMessage // do bounds what it reads
		err = a.do(http.MethodGet, "/admin/v1/audit/jwks", nil, &raw)
		keys = raw
	}
	if err != nil {
		return audit.Report{}, fmt.Errorf("audit: key set: %w", err)
	}
	pk, err := authz.ParseJWKS(keys)
	if err != nil {
		return audit.Report{}, err
	}
	f, err := os.Open(file)
	if err != nil {
		return audit.Report{}, err
	}
	defer f.Close()
	return audit.VerifyOptions{}.VerifyExport(f, pk)
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("%s: over %d bytes", path, max)
	}
	return b, err
}

// stream copies an admin GET's body to w.
func (a *adminClient) stream(path string, w io.Writer) error {
	req, err := http.NewRequest(http.MethodGet, a.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := (&http.Client{}).Do(req) // no overall timeout: an export may be long
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return errors.New(resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
