// Package deploy_test checks deploy/ against the real binary: every metric
// the dashboard and the alerts query exists on a live server's /metrics,
// the rules load with Prometheus's own parser, and the compose file and the
// Kubernetes manifests name only ports, probes and variables the binary has.
// It is a module of its own so that Prometheus's parser stays out of the
// dependencies of the packages games import.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/redistest"
)

// server is the real binary running on a free port.
type server struct {
	bin  string
	addr string
}

func startServer(t *testing.T) *server {
	t.Helper()
	return &server{bin: apitest.Binary(t), addr: apitest.StartBinary(t, nil).Addr}
}

func (s *server) get(t *testing.T, path string) *http.Response {
	t.Helper()
	resp, err := http.Get("http://" + s.addr + path)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// metricNames returns the series names a live server exposes, after a
// few requests so that labelled series exist.
func metricNames(t *testing.T, s *server) map[string]bool {
	t.Helper()
	for _, p := range []string{"/demo/p1/0", "/demo/p2/0", "/demo/p1/x", "/nope"} {
		resp, err := http.Post("http://"+s.addr+p, "application/json", strings.NewReader(`{"events":[{"type":"m"}]}`))
		require.NoError(t, err)
		resp.Body.Close()
	}
	resp := s.get(t, "/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	names := map[string]bool{"up": true} // Prometheus's own
	for name, f := range families {
		names[name] = true
		switch f.GetType().String() {
		case "HISTOGRAM":
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case "SUMMARY":
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	return names
}

func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile("prometheus/alerts.yml", false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs, "the alert rules do not load")
	return groups
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct{ Name, Type string } `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource *datasourceRef  `json:"datasource"`
	Targets    []panelTarget   `json:"targets"`
	GridPos    json.RawMessage `json:"gridPos"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panelTarget struct {
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/eventstreamd.json")
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d), "the dashboard is not valid JSON")
	return d
}

func TestAlertRulesLoad(t *testing.T) {
	groups := loadRules(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
		}
	}
	assert.Subset(t, alerts, []string{"EventstreamdReplicaDown", "EventstreamdErrorRatio", "EventstreamdSyncLatencyHigh",
		"EventstreamdStoreUnavailable", "EventstreamdStreamCapNear"})
}

func TestDashboardPanelsHaveADatasource(t *testing.T) {
	d := loadDashboard(t)
	require.NotEmpty(t, d.Panels)
	graphs := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		graphs++
		require.NotNil(t, p.Datasource, "panel %q has no datasource", p.Title)
		assert.Equal(t, "${ds}", p.Datasource.UID, "%s: the datasource is the dashboard's variable, so it imports into any Grafana", p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			assert.NotEmpty(t, tg.Expr, p.Title)
			assert.Contains(t, tg.Expr, `instance=~"$instance"`, "%s: every query follows the replica filter", p.Title)
		}
	}
	assert.GreaterOrEqual(t, graphs, 10)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	assert.Equal(t, map[string]string{"ds": "datasource", "instance": "query"}, vars)

	var ds struct {
		Datasources []struct{ UID, Type, URL string } `yaml:"datasources"`
	}
	b, err := os.ReadFile("grafana/provisioning/datasources/prometheus.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &ds))
	require.Len(t, ds.Datasources, 1)
	assert.Equal(t, "prometheus", ds.Datasources[0].UID, "the dashboard's datasource is provisioned")
}

// selectorNames parses a PromQL expression with Prometheus's parser and
// returns the metric names it selects.
func selectorNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err, "%s", expr)
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	require.NotEmpty(t, names, "%s selects no metric", expr)
	return names
}

func TestEveryQueriedMetricExists(t *testing.T) {
	live := metricNames(t, startServer(t))
	var exprs []string
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, e := range exprs {
		for _, name := range selectorNames(t, e) {
			assert.True(t, live[name], "%s is queried but not on /metrics (in %s)", name, e)
		}
	}
}

// flagEnv returns the environment variables the binary reads: one per flag.
func flagEnv(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	env := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z-]*)`).FindAllStringSubmatch(string(out), -1) {
		env["EVENTSTREAMD_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
	}
	require.True(t, env["EVENTSTREAMD_STORE"], "could not read the flags from -h:\n%s", out)
	return env
}

func TestComposeMatchesTheBinary(t *testing.T) {
	s := startServer(t)
	env := flagEnv(t, s.bin)
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
			Command     []string          `yaml:"command"`
		} `yaml:"services"`
	}
	b, err := os.ReadFile("compose.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &compose))

	for _, name := range []string{"eventstreamd-1", "eventstreamd-2", "eventstreamd-3"} {
		svc, ok := compose.Services[name]
		require.True(t, ok, "no service %s", name)
		assert.Equal(t, "eventstreamd:latest", svc.Image)
		for k := range svc.Environment {
			assert.True(t, env[k], "%s sets %s, which the binary does not read", name, k)
		}
		assert.True(t, strings.HasPrefix(svc.Environment["EVENTSTREAMD_STORE"], "redis://redis:"), "replicas share the Redis store")
	}
	assert.Contains(t, compose.Services["lb"].Ports, "9922:9922", "the README's curl reaches the load balancer")
	assert.Contains(t, compose.Services["redis"].Command, "--appendonly")

	haproxy, err := os.ReadFile("haproxy/haproxy.cfg")
	require.NoError(t, err)
	assert.Contains(t, string(haproxy), "balance roundrobin")
	assert.Regexp(t, `option httpchk GET /readyz`, string(haproxy))
	for _, name := range []string{"eventstreamd-1:9922", "eventstreamd-2:9922", "eventstreamd-3:9922"} {
		assert.Contains(t, string(haproxy), name)
	}
	prom, err := os.ReadFile("prometheus/prometheus.yml")
	require.NoError(t, err)
	metricsAddr := compose.Services["eventstreamd-1"].Environment["EVENTSTREAMD_METRICS_ADDR"]
	require.NotEmpty(t, metricsAddr, "/metrics is served apart from the public port")
	for _, name := range []string{"eventstreamd-1", "eventstreamd-2", "eventstreamd-3"} {
		assert.Contains(t, string(prom), name+metricsAddr, "Prometheus scrapes every replica where it serves /metrics")
	}
	for _, path := range []string{"/readyz", "/healthz", "/metrics"} {
		assert.Equal(t, http.StatusOK, s.get(t, path).StatusCode, path)
	}
}

func TestKubernetesMatchesTheBinary(t *testing.T) {
	s := startServer(t)
	env := flagEnv(t, s.bin)
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	b, err := os.ReadFile("k8s/kustomization.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &kust))

	kinds := map[string]map[string]any{}
	for _, r := range kust.Resources {
		b, err := os.ReadFile(filepath.Join("k8s", r))
		require.NoError(t, err)
		var doc map[string]any
		require.NoError(t, yaml.Unmarshal(b, &doc), r)
		kinds[doc["kind"].(string)] = doc
	}
	for _, k := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor", "ConfigMap", "Secret"} {
		require.Contains(t, kinds, k)
	}
	for k := range kinds["ConfigMap"]["data"].(map[string]any) {
		assert.True(t, env[k], "the ConfigMap sets %s, which the binary does not read", k)
	}
	for k := range kinds["Secret"]["stringData"].(map[string]any) {
		assert.True(t, env[k], "the Secret sets %s, which the binary does not read", k)
	}

	var dep struct {
		Spec struct {
			Replicas int `yaml:"replicas"`
			Template struct {
				Spec struct {
					Grace      int `yaml:"terminationGracePeriodSeconds"`
					Containers []struct {
						Ports []struct {
							ContainerPort int `yaml:"containerPort"`
						} `yaml:"ports"`
						ReadinessProbe struct {
							HTTPGet struct{ Path string } `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
						LivenessProbe struct {
							HTTPGet struct{ Path string } `yaml:"httpGet"`
						} `yaml:"livenessProbe"`
						SecurityContext struct {
							ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
						} `yaml:"securityContext"`
					} `yaml:"containers"`
					SecurityContext struct {
						RunAsNonRoot bool `yaml:"runAsNonRoot"`
					} `yaml:"securityContext"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	b, _ = yaml.Marshal(kinds["Deployment"])
	require.NoError(t, yaml.Unmarshal(b, &dep))
	assert.Equal(t, 3, dep.Spec.Replicas)
	pod := dep.Spec.Template.Spec
	assert.Greater(t, pod.Grace, 5+15, "graceful termination must outlast the 5 s drain delay and the 15 s shutdown timeout")
	assert.True(t, pod.SecurityContext.RunAsNonRoot)
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.True(t, c.SecurityContext.ReadOnlyRootFilesystem)
	require.Len(t, c.Ports, 2)
	assert.Equal(t, 9922, c.Ports[0].ContainerPort)
	assert.Equal(t, ":"+strconv.Itoa(c.Ports[1].ContainerPort), kinds["ConfigMap"]["data"].(map[string]any)["EVENTSTREAMD_METRICS_ADDR"],
		"the second port is where the binary serves /metrics")
	monitor, _ := yaml.Marshal(kinds["ServiceMonitor"])
	assert.Contains(t, string(monitor), "port: metrics", "Prometheus scrapes the metrics port")
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	for _, path := range []string{c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path} {
		assert.Equal(t, http.StatusOK, s.get(t, path).StatusCode, "probe %s", path)
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	df := string(b)
	assert.Contains(t, df, "RUN make build-static", "the image holds the binary CI builds")
	assert.Contains(t, df, "distroless/static")
	assert.Contains(t, df, ":nonroot")
	metrics := regexp.MustCompile(`(?m)^ENV EVENTSTREAMD_METRICS_ADDR=:(\d+)$`).FindStringSubmatch(df)
	require.NotNil(t, metrics, "the image serves /metrics apart from the public port")
	assert.Regexp(t, `(?m)^EXPOSE 9922 `+metrics[1]+`$`, df, "the image exposes the public port and the metrics port")
	assert.Regexp(t, `HEALTHCHECK .*"healthcheck"`, df)
	assert.Contains(t, df, "/src/bin/eventstreamd-static")

	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^build-static:\n\tCGO_ENABLED=0 .*-trimpath .*-o bin/eventstreamd-static`, string(mk))

	ignore, err := os.ReadFile("../.dockerignore")
	require.NoError(t, err)
	lines := strings.Split(string(ignore), "\n")
	assert.True(t, slices.Contains(lines, ".git"))
}

// need returns the path of a tool, or skips (fails in CI, which installs it).
func need(t *testing.T, tool string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("EVENTSTREAMD_REQUIRE_DEPLOY_TOOLS") == "1" {
			t.Fatalf("%s is not on PATH", tool)
		}
		t.Skipf("%s is not on PATH; apt-get install %s to run this test", tool, tool)
	}
	return path
}

// TestLoadBalancerConfig runs deploy/haproxy/haproxy.cfg for real, its
// replicas replaced by three local eventstreamd processes sharing a local
// Redis, and sends the seed's request and a game's syncs through it.
func TestLoadBalancerConfig(t *testing.T) {
	haproxy := need(t, "haproxy")
	redis := redistest.Start(t)

	cfg, err := os.ReadFile("haproxy/haproxy.cfg")
	require.NoError(t, err)
	local := string(cfg)
	for i := 1; i <= 3; i++ {
		p := apitest.StartBinary(t, []string{"EVENTSTREAMD_STORE=" + redis.URL(), "EVENTSTREAMD_STORE_SECRET=" + redistest.Secret},
			"-log-level", "warn")
		local = strings.ReplaceAll(local, fmt.Sprintf("eventstreamd-%d:9922", i), p.Addr)
	}
	lbPort := redistest.FreePort(t)
	local = strings.ReplaceAll(local, "bind :9922", fmt.Sprintf("bind 127.0.0.1:%d", lbPort))
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(local), 0o600))
	lb := exec.Command(haproxy, "-db", "-f", path)
	var lbLog strings.Builder
	lb.Stdout, lb.Stderr = &lbLog, &lbLog
	require.NoError(t, lb.Start())
	t.Cleanup(func() { _ = lb.Process.Kill(); _ = lb.Wait() })

	url := fmt.Sprintf("http://127.0.0.1:%d", lbPort)
	client := &http.Client{Timeout: 5 * time.Second}
	var reply struct {
		ID     string `json:"id"`
		T      int64  `json:"t"`
		Epoch  string `json:"epoch"`
		Events []struct{ Type string }
	}
	require.Eventually(t, func() bool { // until the health checks pass
		resp, err := client.Post(url+"/foo/me/0", "application/json", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&reply) == nil
	}, 20*time.Second, 100*time.Millisecond, "haproxy said:\n%s", &lbLog)
	assert.Equal(t, "1", reply.ID)
	require.NotEmpty(t, reply.Events)
	assert.Equal(t, "_a", reply.Events[0].Type)

	// Round robin spreads one game over the replicas; the Redis store keeps
	// it one game: same epoch, same public id, t never back.
	epoch, last := reply.Epoch, reply.T
	for range 12 {
		resp, err := client.Get(fmt.Sprintf("%s/foo/me/%d", url, last))
		require.NoError(t, err)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&reply))
		resp.Body.Close()
		assert.Equal(t, epoch, reply.Epoch)
		assert.Equal(t, "1", reply.ID)
		assert.GreaterOrEqual(t, reply.T, last)
		last = reply.T
	}

	// A push connection goes through, and is kept: a second push comes.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lbPort))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /foo/me/%d HTTP/1.1\r\nHost: lb\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", last)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	var got []byte
	buf := make([]byte, 4096)
	for bytes.Count(got, []byte(`"epoch"`)) < 2 {
		n, err := conn.Read(buf)
		require.NoError(t, err, "read so far: %q", got)
		got = append(got, buf[:n]...)
	}
	assert.True(t, bytes.HasPrefix(got, []byte("HTTP/1.1 101")), "upgraded: %q", got)
}

func TestPrometheusConfigLoads(t *testing.T) {
	cfg, err := promconfig.LoadFile("prometheus/prometheus.yml", false, slog.New(slog.DiscardHandler))
	require.NoError(t, err, "Prometheus would not start with this config")
	require.Len(t, cfg.ScrapeConfigs, 1)
	assert.Equal(t, "eventstreamd", cfg.ScrapeConfigs[0].JobName, "the alerts and dashboard select job=\"eventstreamd\"")
	assert.Equal(t, "/metrics", cfg.ScrapeConfigs[0].MetricsPath)
	assert.Equal(t, []string{"/etc/prometheus/alerts.yml"}, cfg.RuleFiles)

	var compose struct {
		Services map[string]struct {
			Volumes     []string          `yaml:"volumes"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	b, err := os.ReadFile("compose.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &compose))
	assert.Contains(t, compose.Services["prometheus"].Volumes, "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
		"the rule file Prometheus loads is the one tested here")

	var provider struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	b, err = os.ReadFile("grafana/provisioning/dashboards/eventstreamd.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &provider))
	require.Len(t, provider.Providers, 1)
	mount := "./grafana/eventstreamd.json:" + provider.Providers[0].Options.Path + "/eventstreamd.json:ro"
	assert.Contains(t, compose.Services["grafana"].Volumes, mount, "Grafana finds the dashboard where it is mounted")
}
