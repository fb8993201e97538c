package main

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// The deployment kit under deploy/ is checked against the worker command it
// runs: flag names, the probes, and the shutdown budget.

const deployDir = "../../deploy"

// drainBudget is the longest the worker command takes to stop after SIGTERM
// with --shutdown-timeout shutdown: Shutdown's deadline, then the
// activities' cancellation grace, then up to 2 s each to withdraw the node
// and to release its sessions (docs/operations.md, "Graceful shutdown").
func drainBudget(t *testing.T, shutdown time.Duration) time.Duration {
	t.Helper()
	_, rdb := redistest.StartMini(t)
	w, err := worker.New(queue.New(rdb, queue.Options{Prefix: "deploy-test"}), nil, nil, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return shutdown + w.Options().ActivityCancellationGrace + 4*time.Second
}

// workerInTree returns the worker command inside a whole root command, so
// that it has the root's persistent flags (--redis, --prefix, ...).
func workerInTree(t *testing.T) *cobra.Command {
	t.Helper()
	cmd, _, err := newRootCommand(&syncBuffer{}, &syncBuffer{}).Find([]string{"worker"})
	if err != nil || cmd.Name() != "worker" {
		t.Fatalf("no worker command: %v", err)
	}
	return cmd
}

// workerFlag returns the flag of `duroworker worker` (its own or a root
// flag) that the environment variable env stands for, or "" if none.
func workerFlag(env string) string {
	for _, v := range envVariables(newRootCommand(&syncBuffer{}, &syncBuffer{})) {
		if v[0] == env && (v[2] == "duroworker" || v[2] == "duroworker worker") {
			return strings.TrimPrefix(v[1], "--")
		}
	}
	return ""
}

// defaultShutdownTimeout is the worker command's --shutdown-timeout default.
func defaultShutdownTimeout(t *testing.T) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(newWorkerCommand().Flags().Lookup("shutdown-timeout").DefValue)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Just the fields of the Kubernetes objects the test checks.
type (
	k8sObject struct {
		APIVersion string    `yaml:"apiVersion"`
		Kind       string    `yaml:"kind"`
		Metadata   k8sMeta   `yaml:"metadata"`
		Spec       yaml.Node `yaml:"spec"`
	}
	k8sMeta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	k8sSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	statefulSetSpec struct {
		ServiceName    string      `yaml:"serviceName"`
		Replicas       int         `yaml:"replicas"`
		Selector       k8sSelector `yaml:"selector"`
		UpdateStrategy struct {
			Type string `yaml:"type"`
		} `yaml:"updateStrategy"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    *int  `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []envVar `yaml:"env"`
		Ports   []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
	}
	envVar struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	probe struct {
		HTTPGet *struct {
			Path string    `yaml:"path"`
			Port yaml.Node `yaml:"port"` // a number or a port name
		} `yaml:"httpGet"`
		TimeoutSeconds int `yaml:"timeoutSeconds"`
	}
	pdbSpec struct {
		MaxUnavailable any          `yaml:"maxUnavailable"` // a number or a percentage
		MinAvailable   any          `yaml:"minAvailable"`
		Selector       *k8sSelector `yaml:"selector"`
	}
	serviceSpec struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Name string `yaml:"name"`
			Port int    `yaml:"port"`
		} `yaml:"ports"`
	}
)

// readManifests decodes every YAML document of every file under
// deploy/kubernetes by kind. The types above hold only the fields checked,
// so fields they do not list are ignored, not refused.
func readManifests(t *testing.T) map[string][]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under %s/kubernetes (%v)", deployDir, err)
	}
	byKind := map[string][]k8sObject{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for i := 0; ; i++ {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
				t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", f, i)
				continue
			}
			byKind[o.Kind] = append(byKind[o.Kind], o)
		}
		fh.Close()
	}
	return byKind
}

func decodeSpec(t *testing.T, o k8sObject, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s %s: spec: %v", o.Kind, o.Metadata.Name, err)
	}
}

// subset reports whether every label of sel is in labels with its value.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func TestDeployKubernetesManifests(t *testing.T) {
	t.Parallel()
	byKind := readManifests(t)
	if len(byKind["StatefulSet"]) != 1 || len(byKind["PodDisruptionBudget"]) != 1 || len(byKind["Service"]) != 1 {
		t.Fatalf("want one StatefulSet, one PodDisruptionBudget and one Service; got %d, %d, %d",
			len(byKind["StatefulSet"]), len(byKind["PodDisruptionBudget"]), len(byKind["Service"]))
	}
	sts := byKind["StatefulSet"][0]
	if sts.APIVersion != "apps/v1" {
		t.Errorf("StatefulSet apiVersion %q", sts.APIVersion)
	}
	var ss statefulSetSpec
	decodeSpec(t, sts, &ss)
	podLabels := ss.Template.Metadata.Labels
	if !subset(ss.Selector.MatchLabels, podLabels) {
		t.Errorf("StatefulSet selector %v does not select its pod labels %v", ss.Selector.MatchLabels, podLabels)
	}
	if ss.UpdateStrategy.Type != "RollingUpdate" || ss.Replicas < 2 {
		t.Errorf("StatefulSet: updateStrategy %q, replicas %d; want RollingUpdate and at least 2", ss.UpdateStrategy.Type, ss.Replicas)
	}
	pod := ss.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("pod securityContext.runAsNonRoot is not true")
	}
	if u := pod.SecurityContext.RunAsUser; u != nil && *u == 0 {
		t.Errorf("pod securityContext.runAsUser is 0")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "worker" {
		t.Errorf("container runs command %q args %q; want the image's entrypoint with args [worker ...]", c.Command, c.Args)
	}
	if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
		t.Errorf("image %q: want an explicit tag", c.Image)
	}
	sc := c.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext: want runAsNonRoot, readOnlyRootFilesystem and no allowPrivilegeEscalation")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources: want cpu and memory requests and a memory limit, got %+v", c.Resources)
	}

	// Every environment variable is a flag of the worker command, and its
	// literal value parses as that flag.
	cmd := workerInTree(t)
	env := map[string]string{}
	for _, e := range c.Env {
		flag := workerFlag(e.Name)
		if flag == "" {
			t.Errorf("env %s is no flag of `duroworker worker` (DUROWORKER_<FLAG>)", e.Name)
			continue
		}
		switch {
		case e.Value != nil:
			env[e.Name] = *e.Value
			if err := lookupFlag(cmd, flag).Value.Set(*e.Value); err != nil {
				t.Errorf("env %s=%q: --%s: %v", e.Name, *e.Value, flag, err)
			}
		case e.ValueFrom == nil:
			t.Errorf("env %s has neither value nor valueFrom", e.Name)
		}
		switch e.Name {
		case envRedis:
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name == "" {
				t.Errorf("%s: want it from a Secret (it holds the password)", envRedis)
			}
		case "DUROWORKER_NODE_ID":
			if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("DUROWORKER_NODE_ID: want the pod name (fieldRef metadata.name), stable across restarts")
			}
		}
	}
	for _, want := range []string{envRedis, envPrefix, "DUROWORKER_NODE_ID", "DUROWORKER_METRICS_ADDR"} {
		if !slices.ContainsFunc(c.Env, func(e envVar) bool {
			return e.Name == want
		}) {
			t.Errorf("env lacks %s", want)
		}
	}

	// The probes reach /healthz and /readyz on the port the metrics server
	// listens on.
	_, portText, ok := strings.Cut(env["DUROWORKER_METRICS_ADDR"], ":")
	metricsPort, err := strconv.Atoi(portText)
	if !ok || err != nil {
		t.Fatalf("DUROWORKER_METRICS_ADDR %q: want [host]:port", env["DUROWORKER_METRICS_ADDR"])
	}
	portOf := func(n yaml.Node) int {
		if p, err := strconv.Atoi(n.Value); err == nil {
			return p
		}
		for _, p := range c.Ports {
			if p.Name == n.Value {
				return p.ContainerPort
			}
		}
		return 0
	}
	for _, p := range []struct {
		name string
		pr   *probe
		path string
	}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if p.pr == nil || p.pr.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", p.name)
			continue
		}
		if p.pr.HTTPGet.Path != p.path || portOf(p.pr.HTTPGet.Port) != metricsPort {
			t.Errorf("%s: GET %s on port %q (%d); want %s on %d", p.name, p.pr.HTTPGet.Path, p.pr.HTTPGet.Port.Value,
				portOf(p.pr.HTTPGet.Port), p.path, metricsPort)
		}
		if time.Duration(p.pr.TimeoutSeconds)*time.Second <= readyPingTimeout {
			t.Errorf("%s: timeoutSeconds %d does not leave /readyz its %s Redis PING", p.name, p.pr.TimeoutSeconds, readyPingTimeout)
		}
	}

	// The grace period outlasts the whole drain.
	shutdown := defaultShutdownTimeout(t)
	if v, ok := env["DUROWORKER_SHUTDOWN_TIMEOUT"]; ok {
		if shutdown, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	budget := drainBudget(t, shutdown)
	if pod.TerminationGracePeriodSeconds == nil {
		t.Errorf("no terminationGracePeriodSeconds: the default 30s is shorter than the drain (%s)", budget)
	} else if grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; grace <= budget {
		t.Errorf("terminationGracePeriodSeconds %d: want more than the drain (%s)", *pod.TerminationGracePeriodSeconds, budget)
	}

	// The PDB and the service select exactly the StatefulSet's pods.
	pdb := byKind["PodDisruptionBudget"][0]
	var ps pdbSpec
	decodeSpec(t, pdb, &ps)
	if pdb.APIVersion != "policy/v1" || ps.Selector == nil || !subset(ps.Selector.MatchLabels, podLabels) ||
		!subset(ss.Selector.MatchLabels, ps.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget %s: apiVersion %q, selector %+v; want policy/v1 selecting the pods %v", pdb.Metadata.Name, pdb.APIVersion, ps.Selector, podLabels)
	}
	if (ps.MaxUnavailable == nil) == (ps.MinAvailable == nil) {
		t.Errorf("PodDisruptionBudget: want exactly one of maxUnavailable and minAvailable")
	}
	svc := byKind["Service"][0]
	var sv serviceSpec
	decodeSpec(t, svc, &sv)
	if svc.Metadata.Name != ss.ServiceName || sv.ClusterIP != "None" || !subset(sv.Selector, podLabels) {
		t.Errorf("Service %s (clusterIP %q, selector %v): want the headless service %q of the StatefulSet selecting %v",
			svc.Metadata.Name, sv.ClusterIP, sv.Selector, ss.ServiceName, podLabels)
	}
}

// dockerInstruction is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstruction struct {
	cmd, args string
}

func readDockerfile(t *testing.T, path string) []dockerInstruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") { // a comment inside a continuation
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeployDockerfiles(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"Dockerfile.worker", "Dockerfile.cli"} {
		t.Run(name, func(t *testing.T) {
			ins := readDockerfile(t, filepath.Join(deployDir, "docker", name))
			last := -1
			for i, in := range ins {
				if in.cmd == "FROM" {
					last = i
				}
			}
			if last <= 0 {
				t.Fatalf("want a build stage and a final stage")
			}
			var build, final []dockerInstruction = ins[:last], ins[last:]
			if from := final[0].args; !strings.HasPrefix(from, "gcr.io/distroless/static") && from != "scratch" {
				t.Errorf("final stage FROM %s: want distroless static or scratch", from)
			}
			user := ""
			for _, in := range final {
				if in.cmd == "USER" {
					user = in.args
				}
			}
			uid, _, _ := strings.Cut(user, ":")
			if n, err := strconv.Atoi(uid); err != nil || n == 0 {
				t.Errorf("final stage USER %q: want a numeric non-root uid (Kubernetes checks runAsNonRoot against it)", user)
			}
			var goBuild string
			for _, in := range build {
				if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
					goBuild = in.args
				}
			}
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-ldflags"} {
				if !strings.Contains(goBuild, want) {
					t.Errorf("go build lacks %s: %q", want, goBuild)
				}
			}
			if name == "Dockerfile.worker" {
				main := ""
				for _, in := range build {
					if v, ok := strings.CutPrefix(in.args, "MAIN="); in.cmd == "ARG" && ok {
						main = v
					}
				}
				if main != "./cmd/duroworker" || !strings.Contains(goBuild, "${MAIN}") {
					t.Errorf("ARG MAIN default %q (want ./cmd/duroworker), go build %q (want ${MAIN})", main, goBuild)
				}
			}
		})
	}
}

// readUnit returns the settings of a systemd unit by section and key (a
// key given twice keeps both values).
func readUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]map[string][]string{}
	section := ""
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a setting: %q", path, n+1, line)
			}
			unit[section][strings.TrimSpace(k)] = append(unit[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return unit
}

func TestDeploySystemdUnit(t *testing.T) {
	t.Parallel()
	unit := readUnit(t, filepath.Join(deployDir, "systemd", "duroworker-worker.service"))
	svc := unit["Service"]
	one := func(key string) string {
		if len(svc[key]) != 1 {
			t.Errorf("[Service] %s: want one value, got %q", key, svc[key])
			return ""
		}
		return svc[key][0]
	}
	exec := strings.Fields(one("ExecStart"))
	if len(exec) < 2 || filepath.Base(exec[0]) != "duroworker" || exec[1] != "worker" {
		t.Fatalf("ExecStart %q: want duroworker worker ...", exec)
	}
	// The flags must parse as the worker command's (%H is the host name).
	cmd := workerInTree(t)
	args := strings.Split(strings.ReplaceAll(strings.Join(exec[2:], " "), "%H", "host"), " ")
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("ExecStart flags %q: %v", args, err)
	}
	shutdown, err := cmd.Flags().GetDuration("shutdown-timeout")
	if err != nil {
		t.Fatal(err)
	}
	stopSec, err := strconv.Atoi(one("TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: want seconds", svc["TimeoutStopSec"])
	}
	if budget := drainBudget(t, shutdown); time.Duration(stopSec)*time.Second <= budget {
		t.Errorf("TimeoutStopSec %d: want more than the drain (%s)", stopSec, budget)
	}
	for key, want := range map[string]string{"KillSignal": "SIGTERM", "Restart": "on-failure", "NoNewPrivileges": "yes", "ProtectSystem": "strict"} {
		if got := one(key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	if one("EnvironmentFile") == "" {
		t.Errorf("want an EnvironmentFile (DUROWORKER_REDIS holds the password)")
	}
	if svc["DynamicUser"] == nil && svc["User"] == nil {
		t.Errorf("want DynamicUser=yes or a User")
	}
	if u := svc["User"]; len(u) > 0 && (u[0] == "root" || u[0] == "0") {
		t.Errorf("User=%s", u[0])
	}
}
