package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/assist-video/assist/signaling/config"
)

// The files under deploy/ are for operators: these tests keep them true to the server. Every
// YAML file parses, Kubernetes objects are well formed, every ASSIST_* variable they name is a
// real setting, deploy/configuration.md lists exactly the settings that exist, and the Compose
// file and the kustomization pass docker compose and kubectl where those tools are installed.

const deployDir = "../../deploy"

// deploySetting is one setting as `assist -help` describes it.
type deploySetting struct {
	flag, env, fileKey, def string
}

var (
	helpFlag    = regexp.MustCompile(`^  -(\S+) string$`)
	helpEnv     = regexp.MustCompile(`\(env (ASSIST_[A-Z0-9_]+)\)`)
	helpDefault = regexp.MustCompile(`\(default "(.*)"\)$`)
	// A variable, or a family of them written with a star (ASSIST_S3_*).
	assistVar = regexp.MustCompile(`\bASSIST_[A-Z0-9_]*(\*|[A-Z0-9])`)
)

// helpSettings runs the node's usage printer in-process (config.Load with -help) and reads
// every setting from it, so the tests follow signaling/config without a copy of its table.
func helpSettings(t *testing.T) map[string]deploySetting {
	t.Helper()
	var usage bytes.Buffer
	_, err := config.Load([]string{"-help"}, func(string) string { return "" }, &usage)
	if !errors.Is(err, config.ErrHelp) {
		t.Fatalf("config.Load -help: want ErrHelp, got %v", err)
	}
	settings := map[string]deploySetting{}
	lines := strings.Split(usage.String(), "\n")
	for i := 0; i+1 < len(lines); i++ {
		m := helpFlag.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		text := lines[i+1]
		env := helpEnv.FindStringSubmatch(text)
		if env == nil {
			t.Fatalf("assist -help: -%s names no environment variable: %q", m[1], text)
		}
		s := deploySetting{flag: m[1], env: env[1], fileKey: strings.ReplaceAll(m[1], "-", "_")}
		if m[1] == "config" {
			s.fileKey = "" // the file itself, not a key in it
		}
		if d := helpDefault.FindStringSubmatch(text); d != nil {
			s.def = d[1]
		}
		settings[s.flag] = s
	}
	if len(settings) < 40 || settings["nats-url"].env != "ASSIST_NATS_URL" {
		t.Fatalf("assist -help: read %d settings, not the expected list; the usage format changed?\n%s", len(settings), usage.String())
	}
	return settings
}

// deployFiles walks deploy/ and returns the paths (slash-separated, relative to deploy/) of
// the files whose name matches keep.
func deployFiles(t *testing.T, keep func(name string) bool) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !keep(d.Name()) {
			return err
		}
		rel, err := filepath.Rel(deployDir, path)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatalf("walk deploy/: %v", err)
	}
	return files
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// yamlDocuments decodes every document of a YAML stream.
func yamlDocuments(r io.Reader) ([]map[string]any, error) {
	dec := yaml.NewDecoder(r)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if doc != nil { // an empty document between two "---"
			docs = append(docs, doc)
		}
	}
}

// checkKubernetesObject reports what a Kubernetes object lacks.
func checkKubernetesObject(doc map[string]any) error {
	var missing []string
	for _, key := range []string{"apiVersion", "kind"} {
		if s, _ := doc[key].(string); s == "" {
			missing = append(missing, key)
		}
	}
	meta, _ := doc["metadata"].(map[string]any)
	if name, _ := meta["name"].(string); name == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		return errors.New("missing " + strings.Join(missing, ", "))
	}
	return nil
}

func TestDeployYAMLFilesParse(t *testing.T) {
	files := deployFiles(t, isYAML)
	for _, want := range []string{"compose/compose.yaml", "kubernetes/kustomization.yaml"} {
		if !slices.Contains(files, want) {
			t.Errorf("deploy/%s is missing", want)
		}
	}
	for _, name := range files {
		t.Run(name+" parses", func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(deployDir, name))
			if err != nil {
				t.Fatal(err)
			}
			docs, err := yamlDocuments(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("deploy/%s: %v", name, err)
			}
			if len(docs) == 0 {
				t.Fatalf("deploy/%s holds no YAML document", name)
			}
			if !strings.HasPrefix(name, "kubernetes/") {
				return
			}
			for i, doc := range docs {
				if doc["kind"] == "Kustomization" { // kustomize's own file, not an object
					continue
				}
				if err := checkKubernetesObject(doc); err != nil {
					t.Errorf("deploy/%s, document %d: %v", name, i+1, err)
				}
			}
		})
	}
}

func TestDeployKustomizationListsEveryManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	for _, name := range deployFiles(t, isYAML) {
		rest, ok := strings.CutPrefix(name, "kubernetes/")
		if !ok || rest == "kustomization.yaml" || strings.Contains(rest, "/") {
			continue
		}
		if !slices.Contains(k.Resources, rest) {
			t.Errorf("deploy/%s is not in kustomization.yaml's resources", name)
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(deployDir, "kubernetes", r)); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", r, err)
		}
	}
}

func TestDeployNamesOnlyRealSettings(t *testing.T) {
	known := map[string]bool{}
	for _, s := range helpSettings(t) {
		known[s.env] = true
	}
	files := deployFiles(t, func(string) bool { return true })
	checked := 0
	for _, name := range files {
		f, err := os.Open(filepath.Join(deployDir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for line := 1; sc.Scan(); line++ {
			for _, v := range assistVar.FindAllString(sc.Text(), -1) {
				checked++
				if prefix, family := strings.CutSuffix(v, "*"); family {
					if !slices.ContainsFunc(slices.Collect(maps.Keys(known)), func(k string) bool { return strings.HasPrefix(k, prefix) }) {
						t.Errorf("deploy/%s:%d: no setting of assist matches %s (see assist -help)", name, line, v)
					}
					continue
				}
				if !known[v] {
					t.Errorf("deploy/%s:%d: %s is not a setting of assist (see assist -help)", name, line, v)
				}
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("deploy/%s: %v", name, err)
		}
	}
	if checked == 0 {
		t.Fatal("found no ASSIST_* variable under deploy/: is the directory there?")
	}
	t.Logf("checked %d ASSIST_* references in %d files", checked, len(files))
}

// docRow is one row of a settings table in deploy/configuration.md.
type docRow struct {
	line                         int
	flag, env, fileKey, def, use string
}

func configurationRows(t *testing.T) []docRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []docRow
	for i, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `-") {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), " | ")
		if len(cells) < 5 {
			t.Errorf("configuration.md:%d: want 5 cells (flag, environment, key, default, meaning): %q", i+1, line)
			continue
		}
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		unquote := func(s string) string { return strings.Trim(s, "`") }
		rows = append(rows, docRow{line: i + 1,
			flag: strings.TrimPrefix(unquote(cells[0]), "-"), env: unquote(cells[1]), fileKey: unquote(cells[2]),
			def: cells[3], use: strings.Join(cells[4:], " | ")})
	}
	return rows
}

func TestDeployConfigurationReferenceListsExactlyTheSettings(t *testing.T) {
	settings := helpSettings(t)
	host, _ := os.Hostname()
	documented := map[string]bool{}
	for _, row := range configurationRows(t) {
		s, ok := settings[row.flag]
		switch {
		case !ok:
			t.Errorf("configuration.md:%d: -%s is not a setting of assist", row.line, row.flag)
			continue
		case documented[row.flag]:
			t.Errorf("configuration.md:%d: -%s is listed twice", row.line, row.flag)
		}
		documented[row.flag] = true
		if row.env != s.env {
			t.Errorf("configuration.md:%d: -%s: environment %q, want %q", row.line, row.flag, row.env, s.env)
		}
		wantKey := s.fileKey
		if wantKey == "" {
			wantKey = "—"
		}
		if row.fileKey != wantKey {
			t.Errorf("configuration.md:%d: -%s: config-file key %q, want %q", row.line, row.flag, row.fileKey, wantKey)
		}
		wantDefault := "`" + s.def + "`"
		switch {
		case s.def == "":
			wantDefault = "empty"
		case s.def == host && row.flag == "node-id":
			wantDefault = "the host name"
		}
		if row.def != wantDefault {
			t.Errorf("configuration.md:%d: -%s: default %s, want %s (assist -help)", row.line, row.flag, row.def, wantDefault)
		}
		if row.use == "" {
			t.Errorf("configuration.md:%d: -%s: the meaning is empty", row.line, row.flag)
		}
	}
	for name, s := range settings {
		if !documented[name] {
			t.Errorf("configuration.md does not list -%s (%s)", name, s.env)
		}
	}
}

// TestDeployComposeAndKubernetesValidate runs the real tools over the files when they are
// installed. What it cannot run it says in the test log; it skips only under -short.
func TestDeployComposeAndKubernetesValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs docker compose and kubectl")
	}
	t.Run("the Compose file passes docker compose config", func(t *testing.T) {
		compose := filepath.Join(deployDir, "compose", "compose.yaml")
		envFile := filepath.Join(deployDir, "compose", ".env.example")
		if _, err := os.Stat(envFile); err != nil {
			t.Fatalf("deploy/compose/.env.example: %v", err)
		}
		tool, args := composeCommand(t)
		if tool == "" {
			return
		}
		args = append(args, "--env-file", envFile, "-f", compose, "config", "-q")
		if out, err := runTool(t, tool, args...); err != nil {
			t.Errorf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
		}
	})
	t.Run("the kustomization builds with kubectl and its output parses", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Log("SKIPPED: kubectl is not installed, so the kustomization was not built " +
				"(install kubectl, e.g. the Debian/Ubuntu package or a release binary, to run this check)")
			return
		}
		out, err := runTool(t, kubectl, "kustomize", filepath.Join(deployDir, "kubernetes"))
		if err != nil {
			t.Fatalf("kubectl kustomize deploy/kubernetes: %v\n%s", err, out)
		}
		docs, err := yamlDocuments(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("kubectl kustomize output does not parse: %v", err)
		}
		kinds := map[string]int{}
		for i, doc := range docs {
			if err := checkKubernetesObject(doc); err != nil {
				t.Errorf("kustomize output, object %d: %v", i+1, err)
			}
			meta, _ := doc["metadata"].(map[string]any)
			if ns, _ := meta["namespace"].(string); ns != "assist" && doc["kind"] != "Namespace" {
				t.Errorf("kustomize output: %s %v is in namespace %q, want assist", doc["kind"], meta["name"], ns)
			}
			kind, _ := doc["kind"].(string)
			kinds[kind]++
		}
		for _, want := range []string{"Namespace", "StatefulSet", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} {
			if kinds[want] == 0 {
				t.Errorf("kustomize output has no %s", want)
			}
		}
		t.Logf("kubectl kustomize built %d objects; not applied (kubectl apply --dry-run needs a cluster)", len(docs))
	})
}

// composeCommand finds `docker compose` (the plugin) or, failing that, the standalone
// docker-compose. "" means neither is usable; what was missing is in the log.
func composeCommand(t *testing.T) (string, []string) {
	t.Helper()
	if docker, err := exec.LookPath("docker"); err == nil {
		out, err := runTool(t, docker, "compose", "version")
		if err == nil {
			t.Logf("validating with %s", strings.TrimSpace(string(out)))
			return docker, []string{"compose"}
		}
		t.Logf("docker is installed but `docker compose` is not usable (%v: %s)", err, firstLine(out))
	} else {
		t.Log("docker is not installed")
	}
	if dc, err := exec.LookPath("docker-compose"); err == nil {
		out, err := runTool(t, dc, "version", "--short")
		if err == nil {
			t.Logf("validating with the standalone docker-compose %s", strings.TrimSpace(string(out)))
			return dc, nil
		}
	}
	t.Log("SKIPPED: neither `docker compose` nor docker-compose is usable, so deploy/compose/compose.yaml " +
		"was only parsed as YAML and checked for settings (install the Docker Compose plugin, or Debian's " +
		"docker-compose package, to validate it; config needs no Docker daemon)")
	return "", nil
}

func runTool(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DOCKER_CLI_HINTS=false")
	return cmd.CombinedOutput()
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// composeVar is a Compose interpolation: ${NAME}, ${NAME:-default} or ${NAME:?error}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^}]*))?\}`)

// interpolate resolves Compose variables from vars (.env.example), as docker compose would.
func interpolate(s string, vars map[string]string) string {
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		p := composeVar.FindStringSubmatch(m)
		if v := vars[p[1]]; v != "" {
			return v
		}
		if p[2] == "-" {
			return p[3]
		}
		return ""
	})
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			vars[k] = v
		}
	}
	return vars
}

func getenvFrom(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestDeployComposeNodesAreDistinctAndValid(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Environment     map[string]any `yaml:"environment"`
			Ports           []string       `yaml:"ports"`
			StopGracePeriod string         `yaml:"stop_grace_period"`
			Healthcheck     map[string]any `yaml:"healthcheck"`
			Build           map[string]any `yaml:"build"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	vars := readEnvFile(t, filepath.Join(deployDir, "compose", ".env.example"))
	seen := map[string]string{}
	nodes := 0
	for name, svc := range file.Services {
		if svc.Environment["ASSIST_NODE_ID"] == nil {
			if strings.HasPrefix(name, "nats") && svc.Healthcheck == nil {
				t.Errorf("service %s has no health check", name)
			}
			continue
		}
		nodes++
		env := map[string]string{}
		for k, v := range svc.Environment {
			env[k] = interpolate(strings.TrimSpace(fmtScalar(v)), vars)
		}
		cfg, err := config.Load(nil, getenvFrom(env), io.Discard)
		if err != nil {
			t.Errorf("service %s: its settings do not load: %v", name, err)
			continue
		}
		for _, unique := range []string{"node-id " + cfg.NodeID, "public-url " + cfg.PublicURL, "udp-port " + env["ASSIST_UDP_PORT"], "turn-udp " + cfg.TURNUDP} {
			if other, dup := seen[unique]; dup {
				t.Errorf("services %s and %s share %s", other, name, unique)
			}
			seen[unique] = name
		}
		if cfg.NATSURL == "" || len(strings.Split(cfg.NATSURL, ",")) != 3 || cfg.S3Endpoint == "" {
			t.Errorf("service %s: want all three NATS servers and MinIO, got nats-url %q s3-endpoint %q", name, cfg.NATSURL, cfg.S3Endpoint)
		}
		if udp := env["ASSIST_UDP_PORT"] + ":" + env["ASSIST_UDP_PORT"] + "/udp"; cfg.UDPPort == 0 || !slices.Contains(svc.Ports, udp) {
			t.Errorf("service %s: want its media port published 1:1 as %q, ports are %v", name, udp, svc.Ports)
		}
		grace, err := time.ParseDuration(svc.StopGracePeriod)
		if err != nil || grace <= cfg.ShutdownTimeout {
			t.Errorf("service %s: stop_grace_period %q must be longer than shutdown-timeout %s", name, svc.StopGracePeriod, cfg.ShutdownTimeout)
		}
		if svc.Build["dockerfile"] != "deploy/docker/Dockerfile" {
			t.Errorf("service %s: want it built from deploy/docker/Dockerfile, got %v", name, svc.Build)
		}
	}
	if nodes < 2 {
		t.Errorf("compose.yaml runs %d Assist nodes, want at least 2", nodes)
	}
}

func fmtScalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := yaml.Marshal(v)
		return string(b)
	}
}

func TestDeployDockerfileBuildsANonRootImageWithAHealthCheck(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"go build", "./cmd/assist", "HEALTHCHECK", "/healthz", "ENTRYPOINT"} {
		if !strings.Contains(text, want) {
			t.Errorf("deploy/docker/Dockerfile does not mention %q", want)
		}
	}
	if strings.Count(text, "\nFROM ") < 2 {
		t.Error("deploy/docker/Dockerfile is not a multi-stage build")
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(user) == 0 || strings.HasPrefix(user[len(user)-1][1], "root") || strings.HasPrefix(user[len(user)-1][1], "0") {
		t.Errorf("deploy/docker/Dockerfile: the image must run as a non-root USER, got %v", user)
	}
}

type k8sProbe struct {
	HTTPGet struct {
		Path   string `yaml:"path"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
}

func TestDeployKubernetesAssistNodes(t *testing.T) {
	f, err := os.Open(filepath.Join(deployDir, "kubernetes", "assist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs, err := yamlDocuments(f)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]map[string]any{}
	for _, doc := range docs {
		byKind[doc["kind"].(string)] = doc
	}
	var set struct {
		Spec struct {
			Replicas int `yaml:"replicas"`
			Template struct {
				Metadata struct {
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"metadata"`
				Spec struct {
					TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
					Containers                    []struct {
						Env []struct {
							Name  string `yaml:"name"`
							Value string `yaml:"value"`
						} `yaml:"env"`
						ReadinessProbe k8sProbe       `yaml:"readinessProbe"`
						LivenessProbe  k8sProbe       `yaml:"livenessProbe"`
						Resources      map[string]any `yaml:"resources"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	for kind, into := range map[string]any{"StatefulSet": &set, "ConfigMap": &cm} {
		doc, ok := byKind[kind]
		if !ok {
			t.Fatalf("assist.yaml has no %s", kind)
		}
		b, _ := yaml.Marshal(doc)
		if err := yaml.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	if byKind["PodDisruptionBudget"] == nil {
		t.Error("assist.yaml has no PodDisruptionBudget")
	}
	pod := set.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	// The settings one pod sees: the ConfigMap, the Secret's keys, and what the pod adds.
	env := maps.Clone(cm.Data)
	env["ASSIST_S3_ACCESS_KEY"], env["ASSIST_S3_SECRET_KEY"] = "assist", "secret-from-the-secret"
	for _, e := range c.Env {
		v := e.Value
		if v == "" { // from the downward API
			v = map[string]string{"ASSIST_NODE_ID": "assist-0"}[e.Name]
			if v == "" {
				v = "192.0.2.10"
			}
		}
		env[e.Name] = regexp.MustCompile(`\$\(([A-Z_]+)\)`).ReplaceAllStringFunc(v, func(m string) string { return env[m[2:len(m)-1]] })
	}
	cfg, err := config.Load(nil, getenvFrom(env), io.Discard)
	if err != nil {
		t.Fatalf("the pod's settings do not load: %v", err)
	}
	if cfg.NodeID != "assist-0" || cfg.PublicURL != "https://assist-0.assist.example.com:8443" || !cfg.TLS() {
		t.Errorf("want node-id assist-0 and its own HTTPS public-url, got %q and %q (tls %v)", cfg.NodeID, cfg.PublicURL, cfg.TLS())
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/livez" ||
		c.ReadinessProbe.HTTPGet.Scheme != "HTTPS" || c.LivenessProbe.HTTPGet.Scheme != "HTTPS" {
		t.Errorf("want HTTPS probes on /readyz (readiness) and /livez (liveness), got %+v %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace <= cfg.DrainDelay+cfg.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %s must be longer than drain-delay %s + shutdown-timeout %s", grace, cfg.DrainDelay, cfg.ShutdownTimeout)
	}
	if cfg.DrainDelay <= 0 {
		t.Error("the nodes stop accepting the moment they drain: set ASSIST_DRAIN_DELAY so Services drop a pod first")
	}
	if a := set.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("want Prometheus scrape annotations for /metrics, got %v", a)
	}
	if c.Resources["requests"] == nil || c.Resources["limits"] == nil {
		t.Error("the assist container sets no resource requests and limits")
	}
}
