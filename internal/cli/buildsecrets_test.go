package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadBuildSecrets: --secret takes docker buildx's forms and refuses
// bad ones by naming the flag and what to write.
func TestReadBuildSecrets(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(file, []byte("from-file"), 0o600)
	t.Setenv("SKIFF_TEST_TOKEN", "from-env")
	t.Setenv("plain", "from-id")
	got, err := readBuildSecrets([]string{
		"id=a,src=" + file, "id=b,source=" + file + ",type=file", "id=c,env=SKIFF_TEST_TOKEN",
		"type=env,id=d,src=SKIFF_TEST_TOKEN", "id=plain",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "from-file", "b": "from-file", "c": "from-env", "d": "from-env", "plain": "from-id"}
	for id, v := range want {
		if string(got[id]) != v {
			t.Errorf("secret %s = %q, want %q", id, got[id], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("secrets %q", got)
	}
	for spec, msg := range map[string]string{
		"src=" + file:                                "the secret has no id",
		"id=x,src=/nonexistent":                      "--secret id=x,src=/nonexistent: open /nonexistent: no such file",
		"id=x,env=SKIFF_TEST_UNSET":                  "the environment variable SKIFF_TEST_UNSET is not set",
		"id=x,colour=red":                            `unknown key "colour"`,
		"id=x,type=ssh":                              "type=ssh is not known",
		"id=a/b,src=" + file:                         `secret id "a/b" is not valid`,
		"id=x,src=" + file + ",env=SKIFF_TEST_TOKEN": "give src= or env=, not both",
		"id": `"id" is not KEY=VALUE`,
	} {
		_, err := readBuildSecrets([]string{spec})
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("--secret %s: error %v, want one saying %q", spec, err, msg)
		}
	}
}
