package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/engine"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the engine version and the Go version",
		Long: `Print the version of duroworker's replay engine (engine.Version, which every
history event records and every execution is pinned to) and of the Go
toolchain that built this binary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "duroworker engine %s\n%s %s/%s\n",
				engine.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
