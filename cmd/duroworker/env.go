package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/duroworker/duroworker/bench"
)

// envPrefixName starts the name of every environment variable the command
// reads.
const envPrefixName = "DUROWORKER_"

// envAnnotation is the flag annotation that holds the flag's environment
// variable.
const envAnnotation = "duroworker_env"

// Environment variables of the root flags most often set.
const (
	envRedis  = envPrefixName + "REDIS"
	envPrefix = envPrefixName + "PREFIX"
)

// envName is the environment variable of flag name defined on cmd:
// DUROWORKER_<FLAG> for the root's and the worker's flags,
// DUROWORKER_<COMMAND>_<FLAG> for the others (COMMAND being the command
// path below the root: DUROWORKER_DLQ_LIST_LIMIT), upper case with dashes
// as underscores.
func envName(cmd *cobra.Command, flag string) string {
	var parts []string
	for c := cmd; c.HasParent(); c = c.Parent() {
		parts = append([]string{c.Name()}, parts...)
	}
	if len(parts) == 1 && parts[0] == "worker" {
		parts = nil
	}
	parts = append(parts, flag)
	return envPrefixName + strings.ToUpper(strings.ReplaceAll(strings.Join(parts, "_"), "-", "_"))
}

// skipEnv reports whether flag f of cmd has no environment variable:
// --help, the root's --version, and hidden or deprecated aliases.
func skipEnv(cmd *cobra.Command, f *pflag.Flag) bool {
	return f.Name == "help" || (f.Name == "version" && !cmd.HasParent()) || f.Hidden || f.Deprecated != "" || deprecation(f) != ""
}

// deprecate hides flag f, kept as a deprecated alias: prepare warns with
// instead when it is given. (pflag's own MarkDeprecated prints its notice
// on the command's standard output, which would spoil -o json.)
func deprecate(f *pflag.Flag, instead string) {
	f.Hidden = true
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[bench.DeprecatedAnnotation] = []string{instead}
}

// deprecation is what to use instead of a deprecated flag, or "".
func deprecation(f *pflag.Flag) string {
	if v := f.Annotations[bench.DeprecatedAnnotation]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// bindEnv gives every flag of the command tree its environment variable:
// it records the name on the flag and says it in the flag's help. It is
// called once the tree is built; a flag added later has no variable.
func bindEnv(root *cobra.Command) {
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		bind := func(f *pflag.Flag) {
			if skipEnv(c, f) {
				return
			}
			if _, done := f.Annotations[envAnnotation]; done {
				return
			}
			name := envName(c, f.Name)
			if f.Annotations == nil {
				f.Annotations = map[string][]string{}
			}
			f.Annotations[envAnnotation] = []string{name}
			f.Usage += " (env " + name + ")"
		}
		c.PersistentFlags().VisitAll(bind)
		c.LocalNonPersistentFlags().VisitAll(bind)
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(root)
}

// flagEnv returns the environment variable of a flag, or "".
func flagEnv(f *pflag.Flag) string {
	if v := f.Annotations[envAnnotation]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// applyEnv sets every flag of cmd (its own and those it inherits) that was
// not given on the command line from its environment variable, when that is
// set (even to an empty string): flag > environment > default. A value the
// flag does not accept is a usage error naming the variable.
func applyEnv(cmd *cobra.Command) error {
	var errs []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		name := flagEnv(f)
		if name == "" || f.Changed {
			return
		}
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: not a valid %s for --%s", name, v, f.Value.Type(), f.Name))
		}
	})
	if len(errs) > 0 {
		return usagef("%s", strings.Join(errs, "; "))
	}
	return nil
}

// envVariables lists every flag's environment variable in the command tree,
// sorted, with the flag (--name) and the command path that defines it.
func envVariables(root *cobra.Command) [][3]string {
	seen := map[string]bool{}
	var out [][3]string
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		add := func(f *pflag.Flag) {
			if name := flagEnv(f); name != "" && !seen[name] {
				seen[name] = true
				out = append(out, [3]string{name, "--" + f.Name, c.CommandPath()})
			}
		}
		c.PersistentFlags().VisitAll(add)
		c.LocalNonPersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(root)
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}
