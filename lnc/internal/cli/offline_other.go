//go:build !linux

package cli

import "github.com/spf13/cobra"

// addOfflineCommands adds nothing: inspect, verify and repair read the
// storage engine's files through lnc-io, which runs on Linux only.
func addOfflineCommands(*cobra.Command, *app) {}
