package dockerapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiserver"
)

// fakeNetworks keeps networks in a list.
type fakeNetworks struct {
	nets    []api.Network
	created []api.NetworkCreateRequest
}

func (f *fakeNetworks) Create(ctx context.Context, req api.NetworkCreateRequest) (api.Network, error) {
	f.created = append(f.created, req)
	n := api.Network{Name: req.Name, ID: "id-" + req.Name, Driver: "bridge", Subnet: req.Subnet, Labels: req.Labels, Internal: req.Internal}
	f.nets = append(f.nets, n)
	return n, nil
}

func (f *fakeNetworks) Remove(ctx context.Context, name string) error {
	i := slices.IndexFunc(f.nets, func(n api.Network) bool { return n.Name == name })
	if i < 0 {
		return errdefs.NotFound("network %s not found", name)
	}
	if len(f.nets[i].Containers) > 0 {
		return errdefs.Conflict("network %s is in use", name)
	}
	f.nets = slices.Delete(f.nets, i, i+1)
	return nil
}

func (f *fakeNetworks) List(ctx context.Context) ([]api.Network, error) {
	return slices.Clone(f.nets), nil
}

func (f *fakeNetworks) Inspect(ctx context.Context, name string) (api.Network, error) {
	for _, n := range f.nets {
		if n.Name == name || strings.HasPrefix(n.ID, name) {
			return n, nil
		}
	}
	return api.Network{}, errdefs.NotFound("network %s not found", name)
}

// fakeContainers answers Get and List.
type fakeContainers struct {
	apiserver.Containers
	ctrs []api.Container
}

func (f *fakeContainers) Get(ctx context.Context, ref string) (api.Container, error) {
	for _, c := range f.ctrs {
		if c.Name == ref || c.ID == ref {
			return c, nil
		}
	}
	return api.Container{}, errdefs.NotFound("container %s not found", ref)
}

func (f *fakeContainers) List(ctx context.Context, all bool) []api.Container { return f.ctrs }

// fakeConnector records the connects and disconnects it is asked for.
type fakeConnector struct{ calls []string }

func (f *fakeConnector) ConnectNetwork(ctx context.Context, container string, x api.NetworkAttachment) error {
	f.calls = append(f.calls, fmt.Sprintf("connect %s %s %v %s", container, x.Network, x.Aliases, x.IP))
	return nil
}

func (f *fakeConnector) DisconnectNetwork(ctx context.Context, container, network string, force bool) error {
	f.calls = append(f.calls, fmt.Sprintf("disconnect %s %s %v", container, network, force))
	return nil
}

func testNetworks() *fakeNetworks {
	return &fakeNetworks{nets: []api.Network{
		{Name: api.DefaultNetwork, ID: "0def", Driver: "bridge", Subnet: "10.88.0.0/16", Gateway: "10.88.0.1", Bridge: "skiff0",
			Containers: map[string]api.Endpoint{"c1": {Name: "web", IP: "10.88.0.5", MAC: "02:42:0a:58:00:05"}}},
		{Name: "backend", ID: "1bac", Driver: "bridge", Subnet: "10.89.0.0/24", Labels: map[string]string{"tier": "db"}, Internal: true},
	}}
}

func TestNetworkEndpoints(t *testing.T) {
	nets := testNetworks()
	ctrs := &fakeContainers{ctrs: []api.Container{{ID: "c1", Name: "web", Config: api.ContainerConfig{}}}}
	conn := &fakeConnector{}
	svc := Services{Networks: nets, Containers: ctrs, Connector: conn}

	rec := serveReq(t, svc, "GET", "/v1.51/networks/bridge", nil)
	in := decodeBody[network.Inspect](t, rec)
	if rec.Code != 200 || in.Name != api.DefaultNetwork || in.Driver != "bridge" || len(in.IPAM.Config) != 1 ||
		in.IPAM.Config[0].Subnet.String() != "10.88.0.0/16" || in.Containers["c1"].IPv4Address.String() != "10.88.0.5/16" ||
		in.Containers["c1"].Name != "web" {
		t.Fatalf("inspect bridge: %d %s", rec.Code, rec.Body)
	}

	rec = serveReq(t, svc, "GET", "/networks?filters="+filtersQuery(map[string][]string{"label": {"tier=db"}}), nil)
	if l := decodeBody[[]network.Inspect](t, rec); len(l) != 1 || l[0].Name != "backend" || !l[0].Internal {
		t.Fatalf("list by label: %s", rec.Body)
	}
	rec = serveReq(t, svc, "GET", "/networks?filters="+filtersQuery(map[string][]string{"type": {"custom"}}), nil)
	if l := decodeBody[[]network.Inspect](t, rec); len(l) != 1 || l[0].Name != "backend" {
		t.Fatalf("list custom: %s", rec.Body)
	}

	body := `{"Name":"front","Driver":"bridge","Internal":true,"CheckDuplicate":true,"Labels":{"a":"b"},"IPAM":{"Driver":"default","Config":[{"Subnet":"10.90.0.0/24"}]}}`
	rec = serveReq(t, svc, "POST", "/v1.51/networks/create", strings.NewReader(body))
	cr := decodeBody[network.CreateResponse](t, rec)
	if rec.Code != 201 || cr.ID != "id-front" || len(nets.created) != 1 || nets.created[0].Subnet != "10.90.0.0/24" ||
		!nets.created[0].Internal || nets.created[0].Labels["a"] != "b" {
		t.Fatalf("create: %d %s %+v", rec.Code, rec.Body, nets.created)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"Name":"o","Driver":"overlay"}`, "overlay"},
		{`{"Name":"v6","EnableIPv6":true}`, "IPv6"},
		{`{"Driver":"bridge"}`, "Name"},
	} {
		rec := serveReq(t, svc, "POST", "/networks/create", strings.NewReader(tc.body))
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("create %s: %d %s", tc.body, rec.Code, rec.Body)
		}
	}

	// Connecting a container to its first network changes nothing; to
	// another, joins it with the endpoint's aliases and address.
	rec = serveReq(t, svc, "POST", "/networks/bridge/connect", strings.NewReader(`{"Container":"web"}`))
	if rec.Code != 200 || len(conn.calls) != 0 {
		t.Fatalf("connect to its own network: %d %s %v", rec.Code, rec.Body, conn.calls)
	}
	rec = serveReq(t, svc, "POST", "/networks/front/connect", strings.NewReader(`{"Container":"web","EndpointConfig":{"Aliases":["www"],"IPAMConfig":{"IPv4Address":"10.90.0.7"}}}`))
	if rec.Code != 200 || !slices.Equal(conn.calls, []string{"connect c1 front [www] 10.90.0.7"}) {
		t.Fatalf("connect to a second network: %d %s %v", rec.Code, rec.Body, conn.calls)
	}
	rec = serveReq(t, svc, "POST", "/networks/front/connect", strings.NewReader(`{"Container":"web","EndpointConfig":{"IPAMConfig":{"IPv6Address":"fd00::7"}}}`))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "IPv6Address") {
		t.Fatalf("connect with an IPv6 address: %d %s", rec.Code, rec.Body)
	}
	rec = serveReq(t, svc, "POST", "/networks/front/disconnect", strings.NewReader(`{"Container":"web","Force":true}`))
	if rec.Code != 200 || !slices.Equal(conn.calls[1:], []string{"disconnect c1 front true"}) {
		t.Fatalf("disconnect from a further network: %d %s %v", rec.Code, rec.Body, conn.calls)
	}

	// docker-compose's disconnect and connect again of a created container.
	rec = serveReq(t, svc, "POST", "/networks/bridge/disconnect", strings.NewReader(`{"Container":"web"}`))
	if rec.Code != 200 {
		t.Fatalf("disconnect of a created container: %d %s", rec.Code, rec.Body)
	}
	ctrs.ctrs[0].State.Status = "running"
	rec = serveReq(t, svc, "POST", "/networks/bridge/disconnect", strings.NewReader(`{"Container":"web"}`))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "cannot leave") {
		t.Fatalf("disconnect of a running container: %d %s", rec.Code, rec.Body)
	}

	rec = serveReq(t, svc, "POST", "/networks/prune", nil)
	pr := decodeBody[network.PruneReport](t, rec)
	if rec.Code != 200 || !slices.Equal(pr.NetworksDeleted, []string{"backend", "front"}) || len(nets.nets) != 1 {
		t.Fatalf("prune: %d %s", rec.Code, rec.Body)
	}
	rec = serveReq(t, svc, "DELETE", "/networks/backend", nil)
	if rec.Code != 404 {
		t.Fatalf("remove a removed network: %d %s", rec.Code, rec.Body)
	}
}

// fakeVolumes keeps volumes in a list.
type fakeVolumes struct{ vols []api.Volume }

func (f *fakeVolumes) VolumeCreate(ctx context.Context, req api.VolumeCreateRequest) (api.Volume, error) {
	v := api.Volume{Name: req.Name, Labels: req.Labels, Mountpoint: "/nonexistent/" + req.Name, Created: time.Unix(1_700_000_000, 0)}
	f.vols = append(f.vols, v)
	return v, nil
}
func (f *fakeVolumes) VolumeList(ctx context.Context) ([]api.Volume, error) {
	return slices.Clone(f.vols), nil
}
func (f *fakeVolumes) VolumeInspect(ctx context.Context, name string) (api.Volume, error) {
	for _, v := range f.vols {
		if v.Name == name {
			return v, nil
		}
	}
	return api.Volume{}, errdefs.NotFound("volume %s not found", name)
}
func (f *fakeVolumes) VolumeRemove(ctx context.Context, name string) error {
	i := slices.IndexFunc(f.vols, func(v api.Volume) bool { return v.Name == name })
	if i < 0 {
		return errdefs.NotFound("volume %s not found", name)
	}
	f.vols = slices.Delete(f.vols, i, i+1)
	return nil
}
func (f *fakeVolumes) VolumePrune(ctx context.Context) (api.VolumePruneResponse, error) {
	return api.VolumePruneResponse{}, errdefs.NotImplemented("not used")
}

// TestVolumeEndpoints: create (named and anonymous), list filters,
// inspect, rm -f of a missing volume, and prune, which takes anonymous
// volumes only unless all=true.
func TestVolumeEndpoints(t *testing.T) {
	vols := &fakeVolumes{}
	svc := Services{Volumes: vols}
	rec := serveReq(t, svc, "POST", "/v1.51/volumes/create", strings.NewReader(`{"Name":"data","Labels":{"app":"db"}}`))
	if v := decodeBody[volume.Volume](t, rec); rec.Code != 201 || v.Name != "data" || v.Driver != "local" || v.Labels["app"] != "db" {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	rec = serveReq(t, svc, "POST", "/volumes/create", strings.NewReader(`{}`))
	anon := decodeBody[volume.Volume](t, rec).Name
	if rec.Code != 201 || !anonymousRE.MatchString(anon) {
		t.Fatalf("anonymous create: %d %s", rec.Code, rec.Body)
	}
	vols.vols = append(vols.vols, api.Volume{Name: "used", UsedBy: []string{"web"}})
	for _, tc := range []struct {
		body, want string
	}{{`{"Name":"n","Driver":"nfs"}`, "nfs"}, {`{"Name":"n","DriverOpts":{"type":"tmpfs"}}`, "--opt"}} {
		if rec := serveReq(t, svc, "POST", "/volumes/create", strings.NewReader(tc.body)); rec.Code != 400 || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("create %s: %d %s", tc.body, rec.Code, rec.Body)
		}
	}

	rec = serveReq(t, svc, "GET", "/volumes?filters="+filtersQuery(map[string][]string{"dangling": {"false"}}), nil)
	if l := decodeBody[volume.ListResponse](t, rec); len(l.Volumes) != 1 || l.Volumes[0].Name != "used" {
		t.Fatalf("list dangling=false: %s", rec.Body)
	}
	rec = serveReq(t, svc, "GET", "/volumes?filters="+filtersQuery(map[string][]string{"label": {"app=db"}}), nil)
	if l := decodeBody[volume.ListResponse](t, rec); len(l.Volumes) != 1 || l.Volumes[0].Name != "data" {
		t.Fatalf("list by label: %s", rec.Body)
	}
	if rec := serveReq(t, svc, "GET", "/volumes/data", nil); rec.Code != 200 || decodeBody[volume.Volume](t, rec).Mountpoint != "/nonexistent/data" {
		t.Fatalf("inspect: %d %s", rec.Code, rec.Body)
	}
	if rec := serveReq(t, svc, "DELETE", "/volumes/missing?force=1", nil); rec.Code != 204 {
		t.Fatalf("rm -f of a missing volume: %d %s", rec.Code, rec.Body)
	}
	if rec := serveReq(t, svc, "DELETE", "/volumes/missing", nil); rec.Code != 404 {
		t.Fatalf("rm of a missing volume: %d %s", rec.Code, rec.Body)
	}

	rec = serveReq(t, svc, "POST", "/v1.51/volumes/prune", nil)
	if p := decodeBody[volume.PruneReport](t, rec); !slices.Equal(p.VolumesDeleted, []string{anon}) {
		t.Fatalf("prune: %s", rec.Body)
	}
	rec = serveReq(t, svc, "POST", "/v1.51/volumes/prune?filters="+filtersQuery(map[string][]string{"all": {"true"}}), nil)
	if p := decodeBody[volume.PruneReport](t, rec); !slices.Equal(p.VolumesDeleted, []string{"data"}) || len(vols.vols) != 1 {
		t.Fatalf("prune all: %s", rec.Body)
	}
}

// TestSystemDF: /system/df answers the pre-1.52 shape docker CLI 28
// reads, counting each image's containers and each volume's users.
func TestSystemDF(t *testing.T) {
	imgs := testImages()
	ctrs := &fakeContainers{ctrs: []api.Container{{ID: "c1", Name: "web", ImageID: idApp, State: api.ContainerState{Status: "running"}}}}
	vols := &fakeVolumes{vols: []api.Volume{{Name: "data", Mountpoint: t.TempDir(), UsedBy: []string{"web"}}}}
	rec := serveReq(t, Services{Images: imgs, Containers: ctrs, Volumes: vols}, "GET", "/v1.51/system/df", nil)
	if rec.Code != 200 {
		t.Fatalf("df: %d %s", rec.Code, rec.Body)
	}
	df := decodeBody[diskUsageV1](t, rec)
	if len(df.Images) != 3 || df.Images[0].Containers != 1 || df.Images[1].Containers != 0 || df.LayersSize != 160 {
		t.Fatalf("images: %s", rec.Body)
	}
	if len(df.Containers) != 1 || df.Containers[0].State != "running" || df.Containers[0].Names[0] != "/web" {
		t.Fatalf("containers: %s", rec.Body)
	}
	if len(df.Volumes) != 1 || df.Volumes[0].UsageData == nil || df.Volumes[0].UsageData.RefCount != 1 {
		t.Fatalf("volumes: %s", rec.Body)
	}
	rec = serveReq(t, Services{Images: imgs}, "GET", "/system/df?type=image", nil)
	if df := decodeBody[diskUsageV1](t, rec); len(df.Images) != 3 || len(df.Volumes) != 0 {
		t.Fatalf("df type=image: %s", rec.Body)
	}
	if rec := serveReq(t, Services{}, "GET", "/system/df?type=disks", nil); rec.Code != 400 {
		t.Fatalf("df of an unknown type: %d %s", rec.Code, rec.Body)
	}
}
