package cli

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc/internal/offline"
)

// addOfflineCommands adds the commands that read a data directory
// directly; they need lnc-io, which runs on Linux only.
func addOfflineCommands(root *cobra.Command, a *app) {
	root.AddCommand(newInspectCommand(a), newVerifyCommand(a), newRepairCommand(a))
}

// offlineTarget is the directory argument and --topic of an offline
// command.
type offlineTarget struct {
	topics []string
}

func (t *offlineTarget) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVarP(&t.topics, "topic", "t", nil, "only this topic (repeatable; default: every topic)")
}

func (t *offlineTarget) resolve(dir string) (*offline.Layout, []offline.TopicDir, error) {
	for _, name := range t.topics {
		if err := checkTopic("--topic", name); err != nil {
			return nil, nil, err
		}
	}
	l, err := offline.Find(vfs.OS(), dir)
	if err != nil {
		return nil, nil, err
	}
	topics, err := l.Select(t.topics)
	if err != nil {
		return nil, nil, err
	}
	return l, topics, nil
}

func formatNS(ns uint64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, int64(ns)).UTC().Format(time.RFC3339Nano)
}

func describeTopic(t *offline.Topic) string {
	if t.Meta == nil {
		return fmt.Sprintf("topic %s", t.Name)
	}
	s := fmt.Sprintf("topic %s (id %d, created %s", t.Name, t.Meta.ID, time.Unix(int64(t.Meta.CreatedAt), 0).UTC().Format(time.RFC3339))
	if r := t.Meta.Retention; r != nil {
		s += fmt.Sprintf(", retention: max age %s, max bytes %s", formatAge(time.Duration(r.MaxAgeSecs)*time.Second), formatBytes(r.MaxBytes))
	} else {
		s += ", retention: the server's default"
	}
	return s + ")"
}

func segmentState(s *offline.Segment) string {
	switch {
	case !s.HasData:
		return "no data file"
	case !s.HasIndex:
		return "no index file"
	case s.Newest:
		return "active"
	}
	return "sealed"
}

type inspectOptions struct {
	target  offlineTarget
	batches bool
	output  string
}

func newInspectCommand(a *app) *cobra.Command {
	o := &inspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect DIR",
		Short: "Show the segments and indexes of a data directory",
		Long: `Show, per topic, the segments of a data directory (a lance node.data_dir, or
one topic's directory in it): base offset, sizes, batches, records, the first
and last batch timestamps, and what the index checks found (the data's CRCs are
checked by lnc verify). --batches lists every index entry. Reads only; it may
run beside a server, whose newest segments may then be changing.`,
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	o.target.add(cmd)
	cmd.Flags().BoolVar(&o.batches, "batches", false, "list every batch of the index")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) })
	return cmd
}

// Inspect's JSON output.
type (
	inspectJSON struct {
		DataDir    string         `json:"data_dir,omitempty"`
		Running    bool           `json:"server_running"`
		Unfinished []string       `json:"unfinished,omitempty"`
		Topics     []inspectTopic `json:"topics"`
	}
	inspectTopic struct {
		Name     string           `json:"name"`
		Dir      string           `json:"dir"`
		Meta     *offline.Meta    `json:"meta"`
		Segments []inspectSegment `json:"segments"`
		Findings []findingJSON    `json:"findings"`
	}
	inspectSegment struct {
		Base       uint64      `json:"base_offset"`
		DataFile   string      `json:"data_file"`
		IndexFile  string      `json:"index_file"`
		State      string      `json:"state"`
		DataBytes  int64       `json:"data_bytes"`
		IndexBytes int64       `json:"index_bytes"`
		Batches    int         `json:"batches"`
		Records    uint64      `json:"records"`
		FirstTS    string      `json:"first_timestamp,omitempty"`
		LastTS     string      `json:"last_timestamp,omitempty"`
		End        uint64      `json:"end_offset"`
		Padding    int64       `json:"padding_bytes,omitempty"`
		BatchList  []batchJSON `json:"batch_list,omitempty"`
	}
	batchJSON struct {
		Entry     int    `json:"entry"`
		Offset    uint64 `json:"offset"`
		Length    uint32 `json:"length"`
		Records   uint32 `json:"records"`
		Timestamp string `json:"timestamp"`
		CRC       string `json:"crc"`
		OK        bool   `json:"ok"`
	}
	findingJSON struct {
		Class string `json:"class"`
		File  string `json:"file,omitempty"`
		Text  string `json:"text"`
	}
)

func findingsJSON(fs []offline.Finding) []findingJSON {
	out := make([]findingJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, findingJSON{Class: f.Class.String(), File: f.File, Text: f.Text})
	}
	return out
}

func crcText(e *index.Entry) string { return fmt.Sprintf("%s:%08x", e.Dialect, e.CRC) }

func (o *inspectOptions) run(cmd *cobra.Command, dir string) error {
	if o.output != "text" && o.output != "json" {
		return usagef("--output %q: want text or json", o.output)
	}
	l, topics, err := o.target.resolve(dir)
	if err != nil {
		return err
	}
	running := false
	if release, err := offline.Lock(l.DataDir); errors.Is(err, offline.ErrInUse) {
		running = true
	} else if err != nil {
		return err
	} else {
		release()
	}
	out := cmd.OutOrStdout()
	if o.output == "json" {
		return o.runJSON(out, l, topics, running)
	}
	if l.DataDir != "" {
		fmt.Fprintf(out, "data directory %s\n", l.DataDir)
	}
	if running {
		fmt.Fprintln(out, "a lance server is running on it: its newest segments may be changing")
	}
	for _, u := range l.Unfinished {
		fmt.Fprintf(out, "unfinished topic creation or deletion (the server removes it at start): %s\n", u)
	}
	if len(topics) == 0 {
		fmt.Fprintln(out, "no topics")
	}
	for _, td := range topics {
		fmt.Fprintln(out)
		var bw *tabwriter.Writer
		cur := ^uint64(0)
		opts := offline.ScanOptions{}
		if o.batches {
			opts.Entry = func(s *offline.Segment, i int, e *index.Entry, ok bool) error {
				if s.Base != cur {
					if bw != nil {
						bw.Flush()
					}
					cur = s.Base
					fmt.Fprintf(out, "batches of %s:\n", s.DataFile())
					bw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
					fmt.Fprintln(bw, "  ENTRY\tOFFSET\tLENGTH\tRECORDS\tTIMESTAMP\tCRC\tCHECK")
				}
				fmt.Fprintf(bw, "  %d\t%d\t%d\t%d\t%s\t%s\t%s\n", i, e.Offset, e.Length, e.RecordCount, formatNS(e.TimestampNS), crcText(e), yesNo(ok, "ok", "FAILED"))
				return nil
			}
		}
		t, err := offline.ScanTopic(vfs.OS(), td, opts)
		if bw != nil {
			bw.Flush()
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(out, describeTopic(t))
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  SEGMENT\tDATA BYTES\tINDEX BYTES\tBATCHES\tRECORDS\tFIRST TIMESTAMP\tLAST TIMESTAMP\tSTATE")
		var batches int
		var records uint64
		start, end := uint64(0), uint64(0)
		for i, s := range t.Segments {
			fmt.Fprintf(tw, "  %020d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Base, s.DataSize, s.IndexSize, s.Batches, s.Records, formatNS(s.FirstTS), formatNS(s.LastTS), segmentState(s))
			batches += s.Batches
			records += s.Records
			if i == 0 {
				start = s.Base
			}
			end = max(end, s.Base+uint64(s.DataSize)-uint64(s.Padding))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %d segment%s, offsets %d..%d, %d batches, %d records\n", len(t.Segments), plural(int64(len(t.Segments))), start, end, batches, records)
		for _, s := range t.Segments {
			if s.Padding > 0 {
				fmt.Fprintf(out, "  %s ends with %d bytes of O_DIRECT padding after its last batch (not data; recovery cuts it)\n", s.DataFile(), s.Padding)
			}
		}
		if len(t.Findings) > 0 {
			fmt.Fprintln(out, "  index checks found (lnc verify also checks the data):")
			for _, f := range t.Findings {
				fmt.Fprintf(out, "    %s: %s\n", f.Class, f)
			}
		}
	}
	return nil
}

func (o *inspectOptions) runJSON(out io.Writer, l *offline.Layout, topics []offline.TopicDir, running bool) error {
	res := inspectJSON{DataDir: l.DataDir, Running: running, Unfinished: l.Unfinished, Topics: []inspectTopic{}}
	for _, td := range topics {
		lists := map[uint64][]batchJSON{}
		opts := offline.ScanOptions{}
		if o.batches {
			opts.Entry = func(s *offline.Segment, i int, e *index.Entry, ok bool) error {
				lists[s.Base] = append(lists[s.Base], batchJSON{Entry: i, Offset: e.Offset, Length: e.Length, Records: e.RecordCount,
					Timestamp: formatNS(e.TimestampNS), CRC: crcText(e), OK: ok})
				return nil
			}
		}
		t, err := offline.ScanTopic(vfs.OS(), td, opts)
		if err != nil {
			return err
		}
		it := inspectTopic{Name: t.Name, Dir: t.Dir, Meta: t.Meta, Segments: []inspectSegment{}, Findings: findingsJSON(t.Findings)}
		for _, s := range t.Segments {
			js := inspectSegment{Base: s.Base, DataFile: s.DataFile(), IndexFile: s.IndexFile(), State: segmentState(s),
				DataBytes: s.DataSize, IndexBytes: s.IndexSize, Batches: s.Batches, Records: s.Records,
				End: s.Base + uint64(s.DataSize) - uint64(s.Padding), Padding: s.Padding, BatchList: lists[s.Base]}
			if s.Batches > 0 {
				js.FirstTS, js.LastTS = formatNS(s.FirstTS), formatNS(s.LastTS)
			}
			it.Segments = append(it.Segments, js)
		}
		res.Topics = append(res.Topics, it)
	}
	return writeJSON(out, res)
}

type verifyOptions struct {
	target offlineTarget
}

func newVerifyCommand(a *app) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every batch of a data directory against its index",
		Long: `Check a data directory (or one topic's directory) while no server runs on it:
every index header and entry, the chain of batch offsets within and across
segments, that each batch lies in its data file, and the CRC of every batch of
every segment against its index entry. It prints each problem: damage (where
acknowledged batches are or may be), or a torn tail (what a crash leaves after
the last acknowledged batch of the newest segment, which recovery cuts), and
notes about leftovers that recovery removes.

Exit status 0 when nothing but notes was found, 1 when any damage or torn tail
was found or the check could not run. It refuses to run while a server holds
the directory's LOCK.`,
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	o.target.add(cmd)
	cmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) })
	return cmd
}

func (o *verifyOptions) run(cmd *cobra.Command, dir string) error {
	l, topics, err := o.target.resolve(dir)
	if err != nil {
		return err
	}
	release, err := offline.Lock(l.DataDir)
	if err != nil {
		return err
	}
	defer release()
	out := cmd.OutOrStdout()
	for _, u := range l.Unfinished {
		fmt.Fprintf(out, "note: unfinished topic creation or deletion (the server removes it at start): %s\n", u)
	}
	bad := 0
	var damage, tails int
	for _, td := range topics {
		t, err := offline.ScanTopic(vfs.OS(), td, offline.ScanOptions{CheckData: true})
		if err != nil {
			return err
		}
		batches := 0
		for _, s := range t.Segments {
			batches += s.Batches
		}
		probs := t.Problems()
		status := "ok"
		if len(probs) > 0 {
			status = fmt.Sprintf("%d problem%s", len(probs), plural(int64(len(probs))))
			bad++
		}
		fmt.Fprintf(out, "topic %s: %d segment%s, %d batches check out: %s\n", t.Name, len(t.Segments), plural(int64(len(t.Segments))), batches, status)
		for _, f := range t.Findings {
			fmt.Fprintf(out, "  %s: %s\n", f.Class, f)
		}
		damage += t.Count(offline.Damage)
		tails += t.Count(offline.Tail)
	}
	if bad > 0 {
		return fmt.Errorf("verify: problems in %d of %d topics (%d damage, %d torn tail); lnc repair --dry-run tells what repair would do",
			bad, len(topics), damage, tails)
	}
	fmt.Fprintf(out, "verified %d topic%s: no problems\n", len(topics), plural(int64(len(topics))))
	return nil
}

type repairOptions struct {
	target offlineTarget
	dryRun bool
}

func newRepairCommand(a *app) *cobra.Command {
	o := &repairOptions{}
	cmd := &cobra.Command{
		Use:   "repair DIR",
		Short: "Cut torn tails and rebuild damaged indexes of a data directory",
		Long: `Repair a data directory (or one topic's directory) while no server runs on it,
so that the server opens it and serves only batches that check out:

  - rebuild from the data the index of a segment that recovery would reject
    or empty although it holds batches (a missing index, a damaged header,
    damaged entries), keeping every entry that still decodes;
  - then run the storage engine's own recovery (lnc-io/topiclog), which
    removes leftover files, rebuilds a lone damaged index entry of a sealed
    segment, and cuts the newest segment after its last batch that checks out.

It never renumbers offsets: when data is missing between segments it changes
nothing in that topic and says so. A batch whose bytes fail their CRC in a
sealed segment cannot be repaired and is reported. --dry-run does all of this
on a copy-on-write view in memory and prints what would change.

Exit status 0 when every topic checks out afterwards (or would, with
--dry-run), 1 otherwise. It refuses to run while a server holds the
directory's LOCK.`,
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	o.target.add(cmd)
	cmd.Flags().BoolVarP(&o.dryRun, "dry-run", "n", false, "change nothing; print what would change")
	cmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) })
	return cmd
}

func (o *repairOptions) run(cmd *cobra.Command, dir string) error {
	l, topics, err := o.target.resolve(dir)
	if err != nil {
		return err
	}
	release, err := offline.Lock(l.DataDir)
	if err != nil {
		return err
	}
	defer release()
	be, err := backend.Open(backend.Config{Kind: backend.KindPwritev2, Workers: 1, DirectBuffers: -1})
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	defer be.Close()
	var fsys vfs.FS = vfs.OS()
	would := ""
	if o.dryRun {
		fsys = offline.NewOverlay(vfs.OS())
		would = "would "
	}
	out := cmd.OutOrStdout()
	for _, u := range l.Unfinished {
		fmt.Fprintf(out, "note: unfinished topic creation or deletion, left for the server to remove: %s\n", u)
	}
	left := 0
	for _, td := range topics {
		res, err := offline.RepairTopic(fsys, be, td)
		if err != nil {
			return err
		}
		probs := res.Before.Problems()
		if len(res.Before.Findings) == 0 {
			fmt.Fprintf(out, "topic %s: nothing to repair\n", td.Name)
			continue
		}
		fmt.Fprintf(out, "topic %s:\n", td.Name)
		fmt.Fprintf(out, "  found %d problem%s:\n", len(probs), plural(int64(len(probs))))
		for _, f := range res.Before.Findings {
			fmt.Fprintf(out, "    %s: %s\n", f.Class, f)
		}
		if res.Refused != "" {
			fmt.Fprintf(out, "  left unchanged: %s\n", res.Refused)
			left++
			continue
		}
		if len(res.Actions) == 0 {
			fmt.Fprintf(out, "  %schange nothing\n", would)
		} else {
			fmt.Fprintf(out, "  %schange:\n", would)
			for _, act := range res.Actions {
				fmt.Fprintf(out, "    %s\n", act)
			}
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(out, "  warning: %s\n", w)
		}
		after := res.After.Problems()
		if len(after) == 0 {
			fmt.Fprintf(out, "  afterwards: no problems\n")
			continue
		}
		left++
		verb := "remain"
		switch {
		case o.dryRun:
			verb = "would remain"
		case len(after) == 1:
			verb = "remains"
		}
		fmt.Fprintf(out, "  afterwards %d problem%s %s:\n", len(after), plural(int64(len(after))), verb)
		for _, f := range after {
			fmt.Fprintf(out, "    %s: %s\n", f.Class, f)
		}
	}
	if o.dryRun {
		fmt.Fprintln(out, "dry run: nothing was written")
	}
	if left > 0 {
		return fmt.Errorf("repair: problems %sremain in %d of %d topics", would, left, len(topics))
	}
	return nil
}
