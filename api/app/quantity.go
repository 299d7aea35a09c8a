package app

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Quantity is a resource amount parsed from the Kubernetes quantity
// syntax, exact to a thousandth of a unit. The zero value is 0.
//
// The syntax skiff accepts is the subset of Kubernetes' that people write
// for CPU and memory: a decimal number without sign or exponent, then an
// optional suffix: m (1/1000), k, M, G, T (powers of 1000), Ki, Mi, Gi, Ti
// (powers of 1024). "500m", "0.5", "2", "256Mi", "1.5Gi", "512M".
// k8s.io/apimachinery's parser is not used: it would bring four modules
// for a function of sixty lines.
type Quantity struct {
	milli int64
}

// quantitySuffixes maps each suffix to its multiplier in thousandths.
var quantitySuffixes = map[string]*big.Int{
	"m":  big.NewInt(1),
	"":   big.NewInt(1e3),
	"k":  big.NewInt(1e6),
	"M":  big.NewInt(1e9),
	"G":  big.NewInt(1e12),
	"T":  big.NewInt(1e15),
	"Ki": big.NewInt(1e3 << 10),
	"Mi": big.NewInt(1e3 << 20),
	"Gi": big.NewInt(1e3 << 30),
	"Ti": big.NewInt(1e3 << 40),
}

// maxQuantityDigits bounds the number part, so a hostile input costs no
// more than a short one.
const maxQuantityDigits = 32

// quantitySyntax is the message for anything that does not parse.
const quantitySyntax = `must be a quantity: a number with an optional suffix m, k, M, G, T, Ki, Mi, Gi or Ti, such as "500m", "2", "256Mi"`

// ParseQuantity parses s. Errors are errdefs.ErrInvalid and say what is
// accepted.
func ParseQuantity(s string) (Quantity, error) {
	num, suffix := splitQuantity(s)
	mult, ok := quantitySuffixes[suffix]
	if num == "" || !ok || len(num) > maxQuantityDigits || !isDecimal(num) {
		if strings.HasPrefix(s, "-") {
			return Quantity{}, errdefs.Invalid("must not be negative")
		}
		return Quantity{}, errdefs.Invalid("%s", quantitySyntax)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return Quantity{}, errdefs.Invalid("%s", quantitySyntax)
	}
	r.Mul(r, new(big.Rat).SetInt(mult))
	if !r.IsInt() {
		return Quantity{}, errdefs.Invalid("must be a whole number of thousandths (1m is the smallest unit)")
	}
	n := r.Num()
	if !n.IsInt64() {
		return Quantity{}, errdefs.Invalid("is too large")
	}
	return Quantity{milli: n.Int64()}, nil
}

// splitQuantity splits s into its number and its suffix.
func splitQuantity(s string) (num, suffix string) {
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') && s[i-1] != '.' {
		i--
	}
	return s[:i], s[i:]
}

// isDecimal reports whether s is DIGITS or DIGITS.DIGITS.
func isDecimal(s string) bool {
	whole, frac, hasDot := strings.Cut(s, ".")
	return allDigits(whole) && (!hasDot || allDigits(frac))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MilliValue returns the amount in thousandths of a unit (millicores for
// CPU).
func (q Quantity) MilliValue() int64 { return q.milli }

// Value returns the amount in whole units (bytes for memory), rounded up.
func (q Quantity) Value() int64 {
	v := q.milli / 1000
	if q.milli%1000 != 0 {
		v++
	}
	return v
}

// String returns the shortest form ParseQuantity reads back to the same
// amount: "500m", "2", "256Mi", "128M" (binary suffixes win ties).
func (q Quantity) String() string {
	if q.milli%1000 != 0 {
		return strconv.FormatInt(q.milli, 10) + "m"
	}
	v := q.milli / 1000
	best := strconv.FormatInt(v, 10)
	if v == 0 {
		return best
	}
	for _, s := range []struct {
		suffix string
		unit   int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}, {"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"k", 1e3}} {
		if v%s.unit == 0 {
			if f := strconv.FormatInt(v/s.unit, 10) + s.suffix; len(f) < len(best) {
				best = f
			}
		}
	}
	return best
}

// ContainerResources converts an App's resource limits to the limits of
// one container. Invalid quantities are errdefs.ErrInvalid naming the
// field; Validate reports the same problems.
func ContainerResources(r api.AppResources) (api.Resources, error) {
	var out api.Resources
	if r.CPU != "" {
		q, err := ParseQuantity(r.CPU)
		if err != nil {
			return api.Resources{}, fmt.Errorf("spec.resources.cpu: %w", err)
		}
		if q.milli > math.MaxInt64/1_000_000 {
			return api.Resources{}, errdefs.Invalid("spec.resources.cpu: is too large")
		}
		out.NanoCPUs = q.milli * 1e6
	}
	if r.Memory != "" {
		q, err := ParseQuantity(r.Memory)
		if err != nil {
			return api.Resources{}, fmt.Errorf("spec.resources.memory: %w", err)
		}
		out.MemoryBytes = q.Value()
	}
	out.PidsLimit = r.Pids
	return out, nil
}
