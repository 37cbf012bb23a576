package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hubjobs/hubjobs/config"
)

// The Kubernetes manifests and the Dockerfile are documentation people
// copy; these checks keep them consistent with the binary.

func readManifest(t *testing.T, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type deployment struct {
	Spec struct {
		Replicas int
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot   bool                  `yaml:"runAsNonRoot"`
					SeccompProfile struct{ Type string } `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
				Containers []struct {
					Args            []string
					Env             []struct{ Name string }
					SecurityContext struct {
						ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
						AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
						Capabilities             struct{ Drop []string }
					} `yaml:"securityContext"`
					Resources struct {
						Requests map[string]string
					}
				}
			}
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	var cm struct{ Data map[string]string }
	readManifest(t, "configmap.yaml", &cm)
	var d deployment
	readManifest(t, "deployment.yaml", &d)
	var raw map[string]any
	readManifest(t, "deployment.yaml", &raw)

	// Every ${VAR} of the ConfigMap's config is set by the Deployment.
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	provided := map[string]string{}
	for _, e := range c.Env {
		provided[e.Name] = "x"
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(cm.Data["config.yaml"], -1) {
		if provided[m[1]] == "" {
			t.Errorf("config.yaml uses ${%s} but the Deployment does not set it", m[1])
		}
	}
	// The ConfigMap's config is valid once those variables hold real values.
	cfg, err := config.Parse([]byte(cm.Data["config.yaml"]), env{
		"HUBJOBS_SESSION_KEY":        testKey,
		"HUBJOBS_OIDC_CLIENT_SECRET": "s3cret",
		"HUBJOBS_AUDIT_DSN":          "postgres://hubjobs@postgres:5432/hubjobs?sslmode=verify-full",
		"PROD_HUB_CONNECTION_STRING": testConnCS,
	}.get)
	if err != nil {
		t.Fatalf("configmap config.yaml: %v", err)
	}
	if !strings.HasPrefix(cfg.Audit.Database, "postgres://") {
		t.Errorf("replicas need a shared PostgreSQL trail, config has %q", cfg.Audit.Database)
	}
	if !strings.HasPrefix(cfg.Listen, "0.0.0.0:8080") {
		t.Errorf("listen %q: the container port and the image's healthcheck use 8080 on all interfaces", cfg.Listen)
	}

	grace := time.Duration(spec.TerminationGracePeriodSeconds) * time.Second
	if need := cfg.Server.DrainDelay + cfg.Server.ShutdownTimeout; grace <= need {
		t.Errorf("terminationGracePeriodSeconds %s must exceed drain_delay + shutdown_timeout = %s", grace, need)
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"at least 2 replicas", d.Spec.Replicas >= 2},
		{"runAsNonRoot", spec.SecurityContext.RunAsNonRoot},
		{"seccomp RuntimeDefault", spec.SecurityContext.SeccompProfile.Type == "RuntimeDefault"},
		{"read-only root filesystem", c.SecurityContext.ReadOnlyRootFilesystem},
		{"no privilege escalation", c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation},
		{"all capabilities dropped", slices.Equal(c.SecurityContext.Capabilities.Drop, []string{"ALL"})},
		{"resource requests", c.Resources.Requests["cpu"] != "" && c.Resources.Requests["memory"] != ""},
		{"serve --config /etc/hubjobs/config.yaml", slices.Equal(c.Args, []string{"serve", "--config", "/etc/hubjobs/config.yaml"})},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("deployment: want %s", ch.what)
		}
	}
	probes := manifestProbes(t, raw)
	for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if probes[probe] != want {
			t.Errorf("%s path %q, want %q", probe, probes[probe], want)
		}
	}

	var pdb struct {
		Kind string
		Spec struct {
			MinAvailable int `yaml:"minAvailable"`
		}
	}
	readManifest(t, "poddisruptionbudget.yaml", &pdb)
	if pdb.Kind != "PodDisruptionBudget" || pdb.Spec.MinAvailable < 1 || pdb.Spec.MinAvailable >= d.Spec.Replicas {
		t.Errorf("PodDisruptionBudget minAvailable %d with %d replicas: want 1..replicas-1", pdb.Spec.MinAvailable, d.Spec.Replicas)
	}
}

// manifestProbes reads each probe's httpGet path from the first container.
func manifestProbes(t *testing.T, raw map[string]any) map[string]string {
	t.Helper()
	dig := func(v any, keys ...string) any {
		for _, k := range keys {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	containers, _ := dig(raw, "spec", "template", "spec", "containers").([]any)
	if len(containers) == 0 {
		t.Fatal("no containers")
	}
	out := map[string]string{}
	for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		path, _ := dig(containers[0], probe, "httpGet", "path").(string)
		out[probe] = path
	}
	return out
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		"CGO_ENABLED=0",
		"-trimpath",
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER nonroot",
		"VOLUME /var/lib/hubjobs",
		`HEALTHCHECK`,
		`CMD ["/hubjobs", "healthcheck"]`,
		`ENTRYPOINT ["/hubjobs", "serve", "--config", "/etc/hubjobs/config.yaml"]`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The default database lives in the image's volume.
	if got := config.DefaultDatabase; got != "sqlite:///var/lib/hubjobs/hubjobs.db" {
		t.Errorf("default audit.database %q is not in the image's VOLUME", got)
	}
}
