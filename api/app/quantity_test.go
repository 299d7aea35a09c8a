package app

import (
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in      string
		milli   int64
		value   int64
		str     string
		wantErr string
	}{
		{in: "0", milli: 0, value: 0, str: "0"},
		{in: "1", milli: 1000, value: 1, str: "1"},
		{in: "500m", milli: 500, value: 1, str: "500m"},
		{in: "1m", milli: 1, value: 1, str: "1m"},
		{in: "0.5", milli: 500, value: 1, str: "500m"},
		{in: "2.5", milli: 2500, value: 3, str: "2500m"},
		{in: "1500m", milli: 1500, value: 2, str: "1500m"},
		{in: "1k", milli: 1e6, value: 1000, str: "1k"},
		{in: "128M", milli: 128e9, value: 128e6, str: "128M"},
		{in: "1G", milli: 1e12, value: 1e9, str: "1G"},
		{in: "2T", milli: 2e15, value: 2e12, str: "2T"},
		{in: "1Ki", milli: 1024e3, value: 1024, str: "1Ki"},
		{in: "256Mi", milli: 256 << 20 * 1000, value: 256 << 20, str: "256Mi"},
		{in: "1.5Gi", milli: 1536 << 20 * 1000, value: 1536 << 20, str: "1536Mi"},
		{in: "1Gi", milli: 1 << 30 * 1000, value: 1 << 30, str: "1Gi"},
		{in: "3Ti", milli: 3 << 40 * 1000, value: 3 << 40, str: "3Ti"},
		{in: "0.001", milli: 1, value: 1, str: "1m"},
		{in: "007", milli: 7000, value: 7, str: "7"},
		{in: "1024", milli: 1024000, value: 1024, str: "1Ki"},
		{in: "1000Mi", milli: 1000 << 20 * 1000, value: 1000 << 20, str: "1000Mi"},
		{in: "1536", milli: 1536000, value: 1536, str: "1536"},

		{in: "", wantErr: "must be a quantity"},
		{in: "m", wantErr: "must be a quantity"},
		{in: "Mi", wantErr: "must be a quantity"},
		{in: "-1", wantErr: "must not be negative"},
		{in: "-500m", wantErr: "must not be negative"},
		{in: "+1", wantErr: "must be a quantity"},
		{in: "1e3", wantErr: "must be a quantity"},
		{in: "1E3", wantErr: "must be a quantity"},
		{in: "1.", wantErr: "must be a quantity"},
		{in: ".5", wantErr: "must be a quantity"},
		{in: "1.2.3", wantErr: "must be a quantity"},
		{in: "1 Gi", wantErr: "must be a quantity"},
		{in: " 1", wantErr: "must be a quantity"},
		{in: "1mi", wantErr: "must be a quantity"},
		{in: "1KB", wantErr: "must be a quantity"},
		{in: "1Pi", wantErr: "must be a quantity"},
		{in: "1u", wantErr: "must be a quantity"},
		{in: "0.0001", wantErr: "whole number of thousandths"},
		{in: "0.5m", wantErr: "whole number of thousandths"},
		{in: "9999999Ti", wantErr: "too large"},
		{in: "9223372036854775808m", wantErr: "too large"},
		{in: "123456789012345678901234567890123", wantErr: "must be a quantity"}, // 33 digits
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			q, err := ParseQuantity(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseQuantity(%q) = %v, %v; want error containing %q", tt.in, q, err, tt.wantErr)
				}
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Errorf("error is not ErrInvalid: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuantity(%q): %v", tt.in, err)
			}
			if q.MilliValue() != tt.milli || q.Value() != tt.value || q.String() != tt.str {
				t.Errorf("ParseQuantity(%q) = milli %d, value %d, %q; want %d, %d, %q", tt.in, q.MilliValue(), q.Value(), q.String(), tt.milli, tt.value, tt.str)
			}
		})
	}
}

func TestContainerResources(t *testing.T) {
	tests := []struct {
		name    string
		in      api.AppResources
		want    api.Resources
		wantErr string
	}{
		{name: "empty means unlimited", in: api.AppResources{}, want: api.Resources{}},
		{name: "half a cpu", in: api.AppResources{CPU: "500m"}, want: api.Resources{NanoCPUs: 5e8}},
		{name: "two cpus", in: api.AppResources{CPU: "2"}, want: api.Resources{NanoCPUs: 2e9}},
		{name: "memory and pids", in: api.AppResources{Memory: "256Mi", Pids: 64}, want: api.Resources{MemoryBytes: 256 << 20, PidsLimit: 64}},
		{name: "bad cpu", in: api.AppResources{CPU: "lots"}, wantErr: "spec.resources.cpu: must be a quantity"},
		{name: "bad memory", in: api.AppResources{Memory: "1GB"}, wantErr: "spec.resources.memory: must be a quantity"},
		{name: "cpu overflows nanos", in: api.AppResources{CPU: "10T"}, wantErr: "spec.resources.cpu: is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ContainerResources(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("ContainerResources = %+v, %v; want ErrInvalid containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ContainerResources = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzParseQuantity checks that ParseQuantity never panics, that its
// errors are ErrInvalid, and that String reads back to the same amount.
func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"500m", "1.5Gi", "0", "256Mi", "1e3", "-1", "9999999Ti", "0.0001", "1k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuantity(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("ParseQuantity(%q) error is not ErrInvalid: %v", s, err)
			}
			return
		}
		if q.MilliValue() < 0 {
			t.Fatalf("ParseQuantity(%q) = %d milli, negative", s, q.MilliValue())
		}
		again, err := ParseQuantity(q.String())
		if err != nil || again != q {
			t.Fatalf("ParseQuantity(%q).String() = %q reads back as %v, %v", s, q.String(), again, err)
		}
	})
}
