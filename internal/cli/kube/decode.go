package kube

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"skiff.dev/skiff/api/errdefs"
)

// MaxManifestBytes bounds what DecodeManifests reads.
const MaxManifestBytes = 8 << 20

// DecodeManifests reads a YAML (or JSON) stream of Kubernetes objects,
// documents separated by "---". Empty documents are skipped, a v1 List
// is expanded into its items, and each object must have an apiVersion
// and a kind. Errors are errdefs.ErrInvalid and name the document.
func DecodeManifests(r io.Reader) ([]*Object, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxManifestBytes {
		return nil, errdefs.Invalid("input is larger than %d MiB: split it into several files", MaxManifestBytes>>20)
	}
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errdefs.Invalid("document %d: %v", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var m map[string]any
		if err := utilyaml.Unmarshal(doc, &m); err != nil {
			return nil, errdefs.Invalid("document %d: %v", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return nil, errdefs.Invalid("document %d: not a Kubernetes object: apiVersion and kind are required", i)
		}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				return nil, errdefs.Invalid("document %d: %v", i, err)
			}
			for j := range l.Items {
				out = append(out, &l.Items[j])
			}
			continue
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errdefs.Invalid("no Kubernetes objects in the input")
	}
	return out, nil
}

// objectRef names an object in messages: "Deployment/shop-00001".
func objectRef(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s/%s", u.GetKind(), u.GetName())
}

// Object is one Kubernetes object read by DecodeManifests.
type Object = unstructured.Unstructured
