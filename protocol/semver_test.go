package protocol

import (
	"errors"
	"testing"
)

func TestValidateVersion(t *testing.T) {
	good := []string{"0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85", "1.0.0-x-y-z.--"}
	bad := []string{"", "1", "1.2", "1.2.3.4", "v1.2.3", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3-01", "1.2.3-a..b", "1.2.3+", "1.2.3+a..b", "1.2.3-ä", "-1.2.3", "1.2.3 ", "99999999999999999999.0.0"}
	for _, v := range good {
		if err := ValidateVersion(v); err != nil {
			t.Errorf("ValidateVersion(%q) = %v, want nil", v, err)
		}
	}
	for _, v := range bad {
		if err := ValidateVersion(v); !errors.Is(err, ErrInvalidField) {
			t.Errorf("ValidateVersion(%q) = %v, want ErrInvalidField", v, err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	// SemVer 2.0.0 §11's example chain, in increasing order.
	chain := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"}
	for i := range chain {
		for j := range chain {
			c, err := CompareVersions(chain[i], chain[j])
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if c != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", chain[i], chain[j], c, want)
			}
		}
	}
	if c, _ := CompareVersions("1.0.0+a", "1.0.0+b"); c != 0 {
		t.Errorf("build metadata must not matter, got %d", c)
	}
	if _, err := CompareVersions("1.0", "1.0.0"); !errors.Is(err, ErrInvalidField) {
		t.Errorf("bad version compared: %v", err)
	}
}
