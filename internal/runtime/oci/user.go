package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/inroot"
)

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid uint32
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// ResolveUser turns a user spec ("", "name", "uid", "uid:gid",
// "name:group", ...) into numeric ids, reading <rootfs>/etc/passwd and
// <rootfs>/etc/group. An empty spec is root. Supplementary groups are the
// groups of /etc/group that list the user's name as a member. A name that
// the files do not hold is ErrInvalid; a numeric uid need not be listed
// (its group is then 0 unless given).
func ResolveUser(rootfs, spec string) (specs.User, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		if hasGroup {
			return specs.User{}, errdefs.Invalid("user %q has no user part: write user[:group]", spec)
		}
		userPart = "0"
	}
	if hasGroup && groupPart == "" {
		return specs.User{}, errdefs.Invalid("user %q has an empty group: write user[:group]", spec)
	}

	users, err := readPasswd(rootfs)
	if err != nil {
		return specs.User{}, err
	}
	var u specs.User
	name := ""
	if id, ok := parseID(userPart); ok {
		u.UID = id
		for _, p := range users {
			if p.uid == id {
				u.GID, name = p.gid, p.name
				break
			}
		}
	} else {
		found := false
		for _, p := range users {
			if p.name == userPart {
				u.UID, u.GID, name, found = p.uid, p.gid, p.name, true
				break
			}
		}
		if !found {
			return specs.User{}, errdefs.Invalid("user %q not found in the image's /etc/passwd: use a numeric uid or a user the image defines", userPart)
		}
	}

	var groups []groupEntry
	if name != "" || (hasGroup && !isID(groupPart)) {
		groups, err = readGroup(rootfs)
		if err != nil {
			return specs.User{}, err
		}
	}
	if hasGroup {
		if id, ok := parseID(groupPart); ok {
			u.GID = id
		} else {
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return specs.User{}, errdefs.Invalid("group %q not found in the image's /etc/group: use a numeric gid or a group the image defines", groupPart)
			}
		}
	}
	if name != "" {
		for _, g := range groups {
			if g.gid == u.GID {
				continue
			}
			for _, m := range g.members {
				if m == name {
					u.AdditionalGids = append(u.AdditionalGids, g.gid)
					break
				}
			}
		}
	}
	return u, nil
}

func isID(s string) bool { _, ok := parseID(s); return ok }

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// maxAccountFile bounds /etc/passwd and /etc/group.
const maxAccountFile = 4 << 20

// readColonFile reads the lines of a colon-separated file in rootfs, split
// into fields; comments and blank lines are skipped. A missing file has no
// lines; anything but a regular file (a FIFO, a device) is refused.
func readColonFile(rootfs, name string) ([][]string, error) {
	if rootfs == "" {
		return nil, nil
	}
	data, err := inroot.ReadFile(rootfs, name, maxAccountFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up the user: %w", err)
	}
	var out [][]string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, nil
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	lines, err := readColonFile(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []passwdEntry
	for _, f := range lines {
		if len(f) < 4 {
			continue
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if !ok1 || !ok2 {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid})
	}
	return out, nil
}

func readGroup(rootfs string) ([]groupEntry, error) {
	lines, err := readColonFile(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	var out []groupEntry
	for _, f := range lines {
		if len(f) < 3 {
			continue
		}
		gid, ok := parseID(f[2])
		if !ok {
			continue
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.members = append(g.members, m)
				}
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// addGroups appends the groups of groupAdd (docker run --group-add) to
// gids, skipping any already there. Each is a numeric gid or a group name
// from <rootfs>/etc/group; a name the file does not hold is ErrInvalid.
func addGroups(rootfs string, gids []uint32, groupAdd []string) ([]uint32, error) {
	var groups []groupEntry
	read := false
	for _, g := range groupAdd {
		gid, ok := parseID(g)
		if !ok {
			if g == "" {
				return nil, errdefs.Invalid("an added group is empty: give a group name or a numeric gid")
			}
			if !read {
				var err error
				if groups, err = readGroup(rootfs); err != nil {
					return nil, err
				}
				read = true
			}
			found := false
			for _, e := range groups {
				if e.name == g {
					gid, found = e.gid, true
					break
				}
			}
			if !found {
				return nil, errdefs.Invalid("added group %q not found in the image's /etc/group: use a numeric gid or a group the image defines", g)
			}
		}
		if !slices.Contains(gids, gid) {
			gids = append(gids, gid)
		}
	}
	return gids, nil
}
