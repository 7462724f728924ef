package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	lance "github.com/lance-go/lance/lnc-client"
)

func newTopicsCommand(a *app) *cobra.Command {
	conn := &connOptions{}
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create, list, describe and delete topics, and set their retention",
		RunE:  groupRunE(a),
	}
	addConnFlags(cmd.PersistentFlags(), conn)
	cmd.AddCommand(
		newTopicsCreateCommand(a, conn),
		newTopicsListCommand(a, conn),
		newTopicsGetCommand(a, conn),
		newTopicsDeleteCommand(a, conn),
		newTopicsRetentionCommand(a, conn),
	)
	return cmd
}

// topicJSON is a topic as --output json prints it.
type topicJSON struct {
	Name      string `json:"name"`
	ID        uint32 `json:"id"`
	CreatedAt string `json:"created_at"`
	Epoch     uint64 `json:"epoch"`
}

func toJSON(t lance.Topic) topicJSON {
	return topicJSON{Name: t.Name, ID: t.ID, CreatedAt: t.CreatedAt.UTC().Format(time.RFC3339), Epoch: t.Epoch}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// retentionFlags are --max-age and --max-bytes.
type retentionFlags struct {
	maxAge, maxBytes string
}

func (r *retentionFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&r.maxAge, "max-age", "", "remove data older than this ("+what+"; Go duration such as 168h, or days such as 7d; 0 = unlimited)")
	cmd.Flags().StringVar(&r.maxBytes, "max-bytes", "", "remove the oldest data beyond this size ("+what+"; bytes, or with a unit such as 10GiB; 0 = unlimited)")
}

func (r *retentionFlags) given() bool { return r.maxAge != "" || r.maxBytes != "" }

func (r *retentionFlags) parse() (lance.Retention, error) {
	var ret lance.Retention
	var err error
	if r.maxAge != "" {
		if ret.MaxAge, err = parseAge(r.maxAge); err != nil {
			return ret, usagef("--max-age: %w", err)
		}
	}
	if r.maxBytes != "" {
		if ret.MaxBytes, err = parseSize(r.maxBytes); err != nil {
			return ret, usagef("--max-bytes: %w", err)
		}
	}
	return ret, nil
}

type topicsCreateOptions struct {
	conn        *connOptions
	retention   retentionFlags
	ifNotExists bool
}

func newTopicsCreateCommand(a *app, conn *connOptions) *cobra.Command {
	o := &topicsCreateOptions{conn: conn}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Long: `Create a topic. Names are 1 to 255 characters of A-Z, a-z, 0-9 and '-'.
With --max-age or --max-bytes the topic is created with that retention,
in one request (a limit not given is unlimited).`,
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	o.retention.add(cmd, "optional")
	cmd.Flags().BoolVar(&o.ifNotExists, "if-not-exists", false, "succeed when the topic exists already (its retention is then left alone)")
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) })
	return cmd
}

func (o *topicsCreateOptions) run(cmd *cobra.Command, name string) error {
	if err := checkTopic("topic", name); err != nil {
		return err
	}
	ret, err := o.retention.parse()
	if err != nil {
		return err
	}
	ctx, cancel := o.conn.withTimeout(cmd.Context())
	defer cancel()
	c, err := o.conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	out := cmd.OutOrStdout()
	var t lance.Topic
	if o.retention.given() {
		t, err = c.CreateTopicWithRetention(ctx, name, ret)
	} else {
		t, err = c.CreateTopic(ctx, name)
	}
	if errors.Is(err, lance.ErrTopicExists) && o.ifNotExists {
		if t, err = c.GetTopic(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(out, "topic %s exists already (id %d)\n", t.Name, t.ID)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "created topic %s (id %d)\n", t.Name, t.ID)
	if o.retention.given() {
		fmt.Fprintf(out, "retention of %s: max age %s, max bytes %s\n", name, formatAge(ret.MaxAge), formatBytes(ret.MaxBytes))
	}
	return nil
}

type topicsListOptions struct {
	conn   *connOptions
	output string
}

func newTopicsListCommand(a *app, conn *connOptions) *cobra.Command {
	o := &topicsListOptions{conn: conn}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the topics",
		Args:  usageArgs(cobra.NoArgs),
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = a.runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd) })
	return cmd
}

func (o *topicsListOptions) run(cmd *cobra.Command) error {
	if o.output != "table" && o.output != "json" {
		return usagef("--output %q: want table or json", o.output)
	}
	ctx, cancel := o.conn.withTimeout(cmd.Context())
	defer cancel()
	c, err := o.conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	topics, err := c.ListTopics(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(topics, func(a, b lance.Topic) int { return strings.Compare(a.Name, b.Name) })
	out := cmd.OutOrStdout()
	if o.output == "json" {
		list := make([]topicJSON, 0, len(topics))
		for _, t := range topics {
			list = append(list, toJSON(t))
		}
		return writeJSON(out, list)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tCREATED")
	for _, t := range topics {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", t.Name, t.ID, t.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

type topicsGetOptions struct {
	conn   *connOptions
	output string
}

func newTopicsGetCommand(a *app, conn *connOptions) *cobra.Command {
	o := &topicsGetOptions{conn: conn}
	cmd := &cobra.Command{
		Use:               "get NAME",
		Short:             "Describe a topic",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeTopics(conn),
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) })
	return cmd
}

func (o *topicsGetOptions) run(cmd *cobra.Command, name string) error {
	if err := checkTopic("topic", name); err != nil {
		return err
	}
	if o.output != "text" && o.output != "json" {
		return usagef("--output %q: want text or json", o.output)
	}
	ctx, cancel := o.conn.withTimeout(cmd.Context())
	defer cancel()
	c, err := o.conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	t, err := c.GetTopic(ctx, name)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if o.output == "json" {
		return writeJSON(out, toJSON(t))
	}
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", t.Name)
	fmt.Fprintf(tw, "id:\t%d\n", t.ID)
	fmt.Fprintf(tw, "created:\t%s\n", t.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "epoch:\t%d\n", t.Epoch)
	return tw.Flush()
}

type topicsDeleteOptions struct {
	conn *connOptions
	yes  bool
}

func newTopicsDeleteCommand(a *app, conn *connOptions) *cobra.Command {
	o := &topicsDeleteOptions{conn: conn}
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a topic and all its data",
		Long: `Delete a topic and all its data. Without --yes, lnc asks for confirmation and
reads the answer from standard input; anything but y or yes keeps the topic.`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeTopics(conn),
	}
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) })
	return cmd
}

func (o *topicsDeleteOptions) run(cmd *cobra.Command, name string) error {
	if err := checkTopic("topic", name); err != nil {
		return err
	}
	if _, err := o.conn.options(); err != nil {
		return err
	}
	if !o.yes {
		fmt.Fprintf(cmd.ErrOrStderr(), "Delete topic %s and all its data? [y/N] ", name)
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the answer: %w", err)
		}
		if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
			return fmt.Errorf("topic %s not deleted: not confirmed (use --yes to skip the question)", name)
		}
	}
	ctx, cancel := o.conn.withTimeout(cmd.Context())
	defer cancel()
	c, err := o.conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.DeleteTopic(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", name)
	return nil
}

type topicsRetentionOptions struct {
	conn      *connOptions
	retention retentionFlags
}

func newTopicsRetentionCommand(a *app, conn *connOptions) *cobra.Command {
	o := &topicsRetentionOptions{conn: conn}
	cmd := &cobra.Command{
		Use:   "retention NAME --max-age AGE --max-bytes SIZE",
		Short: "Set a topic's retention limits",
		Long: `Set a topic's retention limits. The protocol cannot read them back, so both
are set together and both flags are required; 0 means unlimited.`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeTopics(conn),
	}
	o.retention.add(cmd, "required")
	_ = cmd.MarkFlagRequired("max-age")
	_ = cmd.MarkFlagRequired("max-bytes")
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) })
	return cmd
}

func (o *topicsRetentionOptions) run(cmd *cobra.Command, name string) error {
	if err := checkTopic("topic", name); err != nil {
		return err
	}
	ret, err := o.retention.parse()
	if err != nil {
		return err
	}
	ctx, cancel := o.conn.withTimeout(cmd.Context())
	defer cancel()
	c, err := o.conn.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetRetention(ctx, name, ret); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "retention of %s: max age %s, max bytes %s\n", name, formatAge(ret.MaxAge), formatBytes(ret.MaxBytes))
	return nil
}
