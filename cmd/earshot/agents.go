package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// agentRow is an agent as GET/POST /admin/v1/agents answer it.
type agentRow struct {
	Agent         string    `json:"agent"`
	Name          string    `json:"name"`
	Scopes        []string  `json:"scopes"`
	WebhookURL    string    `json:"webhook_url"`
	Embedded      bool      `json:"embedded"`
	CreatedAt     time.Time `json:"created_at"`
	Revoked       bool      `json:"revoked"`
	APIKey        string    `json:"api_key"`
	WebhookSecret string    `json:"webhook_secret"`
}

// agentCmd manages external agents and the users' links to them.
func agentCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("agent: create, list, revoke, rotate-key, webhook, link, unlink or links")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("agent "+sub, flag.ContinueOnError)
	var (
		name, scopes, hook, user, agentID *string
		rotate                            *bool
	)
	switch sub {
	case "create":
		name = fs.String("name", "", "the agent's name, as users will see it (required)")
		scopes = fs.String("scopes", "all", "comma-separated: intents, purchase, redeem, cancel, notify (or all)")
		hook = fs.String("webhook-url", "", "where the agent's events are POSTed (optional: it may use the event stream or MCP)")
	case "webhook":
		hook = fs.String("url", "", `the webhook URL ("" removes it)`)
		rotate = fs.Bool("rotate-secret", false, "replace the signing secret")
	case "link", "unlink", "links":
		user = fs.String("user", "", "the user handle (required)")
		if sub != "links" {
			agentID = fs.String("agent", "", "the agent id (required)")
		}
	case "list", "revoke", "rotate-key":
	default:
		return fmt.Errorf("agent: unknown subcommand %q", sub)
	}
	a, err := newAdmin(fs, args)
	if err != nil {
		return err
	}
	oneID := func() (string, error) {
		if fs.NArg() != 1 {
			return "", fmt.Errorf("agent %s: give exactly one agent id", sub)
		}
		return url.PathEscape(fs.Arg(0)), nil
	}
	switch sub {
	case "create":
		if *name == "" {
			return errors.New("agent create: --name is required")
		}
		body := map[string]any{"name": *name, "webhook_url": *hook}
		if *scopes != "all" && *scopes != "" {
			var list []string
			for s := range strings.SplitSeq(*scopes, ",") {
				list = append(list, strings.TrimSpace(s))
			}
			body["scopes"] = list
		}
		var out agentRow
		if err := a.do(http.MethodPost, "/admin/v1/agents", body, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "agent %s (%s), scopes %s\napi key: %s\n", out.Agent, out.Name, strings.Join(out.Scopes, ","), out.APIKey)
		if out.WebhookSecret != "" {
			fmt.Fprintf(stdout, "webhook secret: %s\n", out.WebhookSecret)
		}
		fmt.Fprintln(stdout, "keep them now: they are not shown again.")
	case "list":
		var out struct{ Agents []agentRow }
		if err := a.do(http.MethodGet, "/admin/v1/agents", nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AGENT\tNAME\tSCOPES\tWEBHOOK\tCREATED\tSTATE")
		for _, r := range out.Agents {
			state := "active"
			switch {
			case r.Revoked:
				state = "revoked"
			case r.Embedded:
				state = "embedded"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Agent, r.Name, strings.Join(r.Scopes, ","), r.WebhookURL, r.CreatedAt.Format(time.RFC3339), state)
		}
		return tw.Flush()
	case "revoke":
		id, err := oneID()
		if err != nil {
			return err
		}
		var out agentRow
		if err := a.do(http.MethodPost, "/admin/v1/agents/"+id+"/revoke", nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", out.Agent)
	case "rotate-key":
		id, err := oneID()
		if err != nil {
			return err
		}
		var out struct {
			APIKey string `json:"api_key"`
		}
		if err := a.do(http.MethodPost, "/admin/v1/agents/"+id+"/keys", nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "api key: %s\nthe old key no longer works.\n", out.APIKey)
	case "webhook":
		id, err := oneID()
		if err != nil {
			return err
		}
		var out agentRow
		if err := a.do(http.MethodPut, "/admin/v1/agents/"+id+"/webhook", map[string]any{"url": *hook, "rotate_secret": *rotate}, &out); err != nil {
			return err
		}
		if out.WebhookURL == "" {
			fmt.Fprintf(stdout, "%s has no webhook\n", out.Agent)
			return nil
		}
		fmt.Fprintf(stdout, "%s posts to %s\n", out.Agent, out.WebhookURL)
		if out.WebhookSecret != "" {
			fmt.Fprintf(stdout, "webhook secret: %s (not shown again)\n", out.WebhookSecret)
		}
	case "link", "unlink", "links":
		if *user == "" || (agentID != nil && *agentID == "") {
			return fmt.Errorf("agent %s: --user and --agent are required", sub)
		}
		switch sub {
		case "link":
			var out struct{ User, Agent string }
			if err := a.do(http.MethodPost, "/admin/v1/users/"+url.PathEscape(*user)+"/agents", map[string]string{"agent": *agentID}, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s linked %s\n", out.User, out.Agent)
		case "unlink":
			if err := a.do(http.MethodDelete, "/admin/v1/users/"+url.PathEscape(*user)+"/agents/"+url.PathEscape(*agentID), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s unlinked %s\n", *user, *agentID)
		case "links":
			var out struct {
				Links []struct {
					Agent    string    `json:"agent"`
					LinkedAt time.Time `json:"linked_at"`
				}
			}
			if err := a.do(http.MethodGet, "/admin/v1/users/"+url.PathEscape(*user)+"/agents", nil, &out); err != nil {
				return err
			}
			for _, l := range out.Links {
				fmt.Fprintf(stdout, "%s\t%s\n", l.Agent, l.LinkedAt.Format(time.RFC3339))
			}
		}
	}
	return nil
}
