package cli

import (
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lance-go/lance/lnc-network/control"
)

func newClusterCommand(a *app) *cobra.Command {
	conn := &connOptions{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show the server's cluster",
		RunE:  groupRunE(a),
	}
	addConnFlags(cmd.PersistentFlags(), conn)
	cmd.AddCommand(newClusterStatusCommand(a, conn))
	return cmd
}

type clusterStatusOptions struct {
	conn   *connOptions
	output string
}

// clusterJSON is the status as --output json prints it.
type clusterJSON struct {
	NodeID          uint16            `json:"node_id"`
	Mode            string            `json:"mode,omitempty"`
	IsLeader        bool              `json:"is_leader"`
	LeaderID        *uint16           `json:"leader_id"`
	Term            uint64            `json:"term"`
	Nodes           uint64            `json:"nodes"`
	HealthyNodes    uint64            `json:"healthy_nodes"`
	QuorumAvailable bool              `json:"quorum_available"`
	Peers           map[string]string `json:"peers"`
}

func newClusterStatusCommand(a *app, conn *connOptions) *cobra.Command {
	o := &clusterStatusOptions{conn: conn}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the answering node's view of the cluster",
		Args:  usageArgs(cobra.NoArgs),
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = a.runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd) })
	return cmd
}

func (o *clusterStatusOptions) run(cmd *cobra.Command) error {
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
	s, err := c.ClusterStatus(ctx)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if o.output == "json" {
		peers := s.Peers
		if peers == nil {
			peers = map[string]string{}
		}
		return writeJSON(out, clusterJSON{
			NodeID: s.NodeID, Mode: s.Mode, IsLeader: s.IsLeader, LeaderID: s.LeaderID, Term: s.Term,
			Nodes: s.NodeCount, HealthyNodes: s.HealthyNodes, QuorumAvailable: s.QuorumAvailable, Peers: peers,
		})
	}
	leader := "unknown"
	if s.LeaderID != nil {
		leader = "node " + strconv.Itoa(int(*s.LeaderID))
	}
	mode := s.Mode
	if mode == "" {
		mode = "cluster"
	}
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "node:\t%d\n", s.NodeID)
	fmt.Fprintf(tw, "mode:\t%s\n", mode)
	fmt.Fprintf(tw, "leader:\t%s%s\n", leader, yesNo(s.IsLeader, " (this node)", ""))
	fmt.Fprintf(tw, "term:\t%d\n", s.Term)
	fmt.Fprintf(tw, "nodes:\t%d (%d healthy)\n", s.NodeCount, s.HealthyNodes)
	fmt.Fprintf(tw, "quorum:\t%s\n", yesNo(s.QuorumAvailable, "available", "not available"))
	ids := make([]string, 0, len(s.Peers))
	for id := range s.Peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(tw, "peer %s:\t%s\n", id, s.Peers[id])
	}
	return tw.Flush()
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// checkTopic refuses a topic name the server would refuse, as a usage
// error.
func checkTopic(flag, name string) error {
	if err := control.ValidateTopicName(name); err != nil {
		return usagef("%s %q: %w", flag, name, err)
	}
	return nil
}
