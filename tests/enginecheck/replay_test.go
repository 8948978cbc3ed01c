// Replays offline plans (python -m tools.plan --json) as successive `pulumi up`s through the
// real Pulumi engine, with a fake Docker provider that keeps the engine's networks and
// containers and refuses what the Docker daemon refuses:
//
//   - a network whose subnet overlaps an existing one ("Pool overlaps with other one on this
//     address space"), or whose name is taken;
//   - removing a network that containers are attached to ("has active endpoints");
//   - a container on a network that does not exist, or whose name is taken.
//
// Only the Docker networks and containers of each plan are registered (in dependency order,
// with their dependencies, property dependencies and delete-before-replace option); every
// other input change is a replacement, as the Docker provider's networks and containers have
// it for the inputs that matter here. Each plan file is one update; the test prints one line
// per update, "update N: ok" or "update N: failed: <error>", and fails if any update fails.
//
//	DEVSTACK_PLANS=plan0.json,plan1.json go test -run TestReplay -v
package enginecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/blang/semver"

	"github.com/pulumi/pulumi/pkg/v3/engine"
	lt "github.com/pulumi/pulumi/pkg/v3/engine/lifecycletest/framework"
	"github.com/pulumi/pulumi/pkg/v3/resource/deploy"
	"github.com/pulumi/pulumi/pkg/v3/resource/deploy/deploytest"
	"github.com/pulumi/pulumi/pkg/v3/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
)

const (
	networkType   = "docker:index/network:Network"
	containerType = "docker:index/container:Container"
)

type planResource struct {
	URN                  string              `json:"urn"`
	Type                 string              `json:"type"`
	Name                 string              `json:"name"`
	Dependencies         []string            `json:"dependencies"`
	PropertyDependencies map[string][]string `json:"property_dependencies"`
	Inputs               map[string]any      `json:"inputs"`
	Options              struct {
		DeleteBeforeReplace bool `json:"delete_before_replace"`
	} `json:"options"`
}

// replayed: the plan's networks and containers, dependencies first.
func replayed(t *testing.T, path string) []planResource {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var plan struct {
		Resources []planResource `json:"resources"`
	}
	if err := json.Unmarshal(data, &plan); err != nil {
		t.Fatal(err)
	}
	kept := map[string]planResource{}
	for _, r := range plan.Resources {
		if r.Type == networkType || r.Type == containerType {
			kept[r.URN] = r
		}
	}
	var ordered []planResource
	done := map[string]bool{}
	var visit func(urn string)
	visit = func(urn string) {
		r, ok := kept[urn]
		if !ok || done[urn] {
			return
		}
		done[urn] = true
		for _, dep := range r.Dependencies {
			visit(dep)
		}
		ordered = append(ordered, r)
	}
	urns := make([]string, 0, len(kept))
	for urn := range kept {
		urns = append(urns, urn)
	}
	sort.Strings(urns)
	for _, urn := range urns {
		visit(urn)
	}
	return ordered
}

// fakeDocker is the daemon's view: networks and containers by id.
type fakeDocker struct {
	mu         sync.Mutex
	next       int
	networks   map[resource.ID]network
	containers map[resource.ID]container
}

type network struct {
	name   string
	subnet netip.Prefix
}

type container struct {
	name     string
	networks []string
}

func text(m property.Map, key string) string {
	v := m.Get(key)
	if v.IsString() {
		return v.AsString()
	}
	return ""
}

func attachedTo(m property.Map) []string {
	var names []string
	v := m.Get("networksAdvanced")
	if !v.IsArray() {
		return nil
	}
	for _, item := range v.AsArray().AsSlice() {
		if item.IsMap() {
			names = append(names, text(item.AsMap(), "name"))
		}
	}
	return names
}

func subnetOf(m property.Map) (netip.Prefix, error) {
	v := m.Get("ipamConfigs")
	if !v.IsArray() || v.AsArray().Len() == 0 {
		return netip.Prefix{}, fmt.Errorf("no ipamConfigs")
	}
	return netip.ParsePrefix(text(v.AsArray().Get(0).AsMap(), "subnet"))
}

func (d *fakeDocker) create(_ context.Context, req plugin.CreateRequest) (plugin.CreateResponse, error) {
	if req.Preview {
		return plugin.CreateResponse{Properties: req.Properties, Status: resource.StatusOK}, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	name := text(req.Properties, "name")
	switch string(req.Type) {
	case networkType:
		subnet, err := subnetOf(req.Properties)
		if err != nil {
			return plugin.CreateResponse{}, err
		}
		for _, n := range d.networks {
			if n.name == name {
				return plugin.CreateResponse{}, fmt.Errorf("network with name %s already exists", name)
			}
			if n.subnet.Overlaps(subnet) {
				return plugin.CreateResponse{}, fmt.Errorf(
					"creating %s (%s): Error response from daemon: Pool overlaps with other one on this address space"+
						" (%s, %s)", name, subnet, n.name, n.subnet)
			}
		}
		d.next++
		id := resource.ID(fmt.Sprintf("net-%d", d.next))
		d.networks[id] = network{name, subnet}
		return plugin.CreateResponse{ID: id, Properties: req.Properties, Status: resource.StatusOK}, nil
	case containerType:
		for _, c := range d.containers {
			if c.name == name {
				return plugin.CreateResponse{}, fmt.Errorf("container name %s is already in use", name)
			}
		}
		attached := attachedTo(req.Properties)
		for _, want := range attached {
			found := false
			for _, n := range d.networks {
				found = found || n.name == want
			}
			if !found {
				return plugin.CreateResponse{}, fmt.Errorf("creating %s: network %s not found", name, want)
			}
		}
		d.next++
		id := resource.ID(fmt.Sprintf("ctr-%d", d.next))
		d.containers[id] = container{name, attached}
		return plugin.CreateResponse{ID: id, Properties: req.Properties, Status: resource.StatusOK}, nil
	}
	return plugin.CreateResponse{}, fmt.Errorf("unexpected type %s", req.Type)
}

func (d *fakeDocker) delete(_ context.Context, req plugin.DeleteRequest) (plugin.DeleteResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok := d.networks[req.ID]; ok {
		for _, c := range d.containers {
			for _, attached := range c.networks {
				if attached == n.name {
					return plugin.DeleteResponse{}, fmt.Errorf(
						"removing network %s: error while removing network: network %s has active endpoints (%s)",
						n.name, n.name, c.name)
				}
			}
		}
		delete(d.networks, req.ID)
		return plugin.DeleteResponse{}, nil
	}
	delete(d.containers, req.ID)
	return plugin.DeleteResponse{}, nil
}

// diff: any changed input replaces the resource (unknown values included, as in the engine's
// check of a replaced dependency's dependents).
func diff(_ context.Context, req plugin.DiffRequest) (plugin.DiffResult, error) {
	var keys []resource.PropertyKey
	for key, value := range req.NewInputs.AsMap() {
		if !value.Equals(req.OldInputs.Get(key)) {
			keys = append(keys, resource.PropertyKey(key))
		}
	}
	for key := range req.OldInputs.AsMap() {
		if _, ok := req.NewInputs.GetOk(key); !ok {
			keys = append(keys, resource.PropertyKey(key))
		}
	}
	if len(keys) == 0 {
		return plugin.DiffResult{Changes: plugin.DiffNone}, nil
	}
	return plugin.DiffResult{Changes: plugin.DiffSome, ReplaceKeys: keys, ChangedKeys: keys}, nil
}

func TestReplay(t *testing.T) {
	paths := strings.Split(os.Getenv("DEVSTACK_PLANS"), ",")
	if len(paths) == 0 || paths[0] == "" {
		t.Skip("set DEVSTACK_PLANS to comma-separated plan files (python -m tools.plan --json)")
	}
	docker := &fakeDocker{networks: map[resource.ID]network{}, containers: map[resource.ID]container{}}
	loader := deploytest.NewProviderLoader("docker", semver.MustParse("4.0.0"), func() (plugin.Provider, error) {
		return &deploytest.Provider{CreateF: docker.create, DeleteF: docker.delete, DiffF: diff}, nil
	})
	var current []planResource
	program := deploytest.NewLanguageRuntimeF(func(_ plugin.RunInfo, monitor *deploytest.ResourceMonitor) error {
		urns := map[string]resource.URN{}
		for _, r := range current {
			deps := []resource.URN{}
			for _, dep := range r.Dependencies {
				if urn, ok := urns[dep]; ok {
					deps = append(deps, urn)
				}
			}
			// As the Python SDK sends them: an entry for every input, empty where the value
			// came from no resource (the engine reads a request without any as "every input
			// depends on every dependency").
			propertyDeps := map[resource.PropertyKey][]resource.URN{}
			for key, from := range r.PropertyDependencies {
				propertyDeps[resource.PropertyKey(key)] = []resource.URN{}
				for _, dep := range from {
					if urn, ok := urns[dep]; ok {
						propertyDeps[resource.PropertyKey(key)] = append(propertyDeps[resource.PropertyKey(key)], urn)
					}
				}
			}
			dbr := r.Options.DeleteBeforeReplace
			resp, err := monitor.RegisterResource(tokens.Type(r.Type), r.Name, true, deploytest.ResourceOptions{
				Inputs:              resource.NewPropertyMapFromMap(r.Inputs),
				Dependencies:        deps,
				PropertyDeps:        propertyDeps,
				DeleteBeforeReplace: &dbr,
			})
			if err != nil {
				return err
			}
			urns[r.URN] = resp.URN
		}
		return nil
	})
	plan := &lt.TestPlan{Project: "devstack", Stack: "dev"}
	plan.Options.HostF = deploytest.NewPluginHostF(nil, nil, program, nil, nil, loader)
	plan.Options.T = t
	plan.Options.SkipDisplayTests = true
	var snapshot *deploy.Snapshot
	failed := false
	for i, path := range paths {
		current = replayed(t, path)
		next, err := lt.TestOp(engine.Update).RunStep(
			plan.GetProject(), plan.GetTarget(t, snapshot), plan.Options, false, nil, nil, fmt.Sprintf("update-%d", i))
		if err != nil {
			fmt.Printf("update %d: failed: %v\n", i, err)
			failed = true
			break
		}
		snapshot = next
		fmt.Printf("update %d: ok (%d networks, %d containers in the fake daemon)\n",
			i, len(docker.networks), len(docker.containers))
	}
	if failed {
		t.Fail()
	}
}
