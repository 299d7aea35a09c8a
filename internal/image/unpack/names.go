package unpack

import (
	"archive/tar"
	"path"
	"slices"
	"strings"
)

// Overlayfs and OCI whiteout vocabulary.
const (
	// whiteoutPrefix starts the name of an OCI whiteout entry.
	whiteoutPrefix = ".wh."
	// whiteoutMetaPrefix starts AUFS metadata entries, skipped.
	whiteoutMetaPrefix = ".wh..wh."
	// opaqueMarker marks its directory opaque.
	opaqueMarker = ".wh..wh..opq"
	// opaqueXattr is the xattr overlayfs reads to treat a directory as opaque.
	opaqueXattr = "trusted.overlay.opaque"
	// paxXattrPrefix starts the PAX records that carry xattrs.
	paxXattrPrefix = "SCHILY.xattr."
)

// cleanName returns the path of the entry called name relative to the
// layer root, "" for the root itself. It refuses names that climb out of
// the root and names that use the whiteout prefix in a parent component.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", refuse("the entry has an empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", refuse("the name contains a NUL byte")
	}
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == "." {
		return "", nil
	}
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", refuse("the name climbs out of the layer root")
	}
	parent, _ := splitRel(rel)
	for c := range strings.SplitSeq(parent, "/") {
		if strings.HasPrefix(c, whiteoutPrefix) && (!strings.HasPrefix(c, whiteoutMetaPrefix) || c == opaqueMarker) {
			return "", refuse("the parent directory %q uses the reserved whiteout prefix %q", c, whiteoutPrefix)
		}
	}
	return rel, nil
}

// aufsMeta reports whether rel is AUFS metadata (".wh..wh.aufs",
// ".wh..wh.plnk/..."), which carries nothing to unpack.
func aufsMeta(rel string) bool {
	for c := range strings.SplitSeq(rel, "/") {
		if strings.HasPrefix(c, whiteoutMetaPrefix) && c != opaqueMarker {
			return true
		}
	}
	return false
}

// splitRel splits a cleaned relative path into its parent ("" for the
// root) and its last component.
func splitRel(rel string) (parent, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// isUnder reports whether rel is dir or lies below it.
func isUnder(rel, dir string) bool {
	return rel == dir || strings.HasPrefix(rel, dir+"/")
}

// symlinkClimbs reports whether target, read lexically from the directory
// holding the symlink rel (from the root when target is absolute), climbs
// above the layer root through "..".
func symlinkClimbs(rel, target string) bool {
	depth := 0
	if !strings.HasPrefix(target, "/") {
		if parent, _ := splitRel(rel); parent != "" {
			depth = strings.Count(parent, "/") + 1
		}
	}
	for c := range strings.SplitSeq(target, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// xattr is one extended attribute of an entry.
type xattr struct {
	name  string
	value string
}

// entryXattrs returns the xattrs the entry's PAX records carry, sorted by
// name. It refuses the xattrs that steer overlayfs.
func entryXattrs(hdr *tar.Header) ([]xattr, error) {
	var xs []xattr
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if err := checkXattrName(name); err != nil {
			return nil, err
		}
		xs = append(xs, xattr{name: name, value: v})
	}
	slices.SortFunc(xs, func(a, b xattr) int { return strings.Compare(a.name, b.name) })
	return xs, nil
}

func checkXattrName(name string) error {
	switch {
	case name == "":
		return refuse("an xattr has an empty name")
	case overlayXattr(name):
		return refuse("the xattr %q is reserved for overlayfs; mark opaque directories with %q entries", name, opaqueMarker)
	}
	return nil
}

// overlayXattr reports whether name is in a namespace overlayfs reads.
func overlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}
