package image

// Debian version order, as dpkg has it.

import "strings"

// compareDebianVersions orders two Debian versions as dpkg does:
// epoch, then upstream and revision by dpkg's character rules.
func compareDebianVersions(a, b string) int {
	ea, ra := splitEpoch(a)
	eb, rb := splitEpoch(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	ua, va := splitRevision(ra)
	ub, vb := splitRevision(rb)
	if c := compareVersionPart(ua, ub); c != 0 {
		return c
	}
	return compareVersionPart(va, vb)
}

func splitEpoch(v string) (int, string) {
	if i := strings.IndexByte(v, ':'); i > 0 {
		n := 0
		for _, c := range v[:i] {
			if c < '0' || c > '9' {
				return 0, v
			}
			n = n*10 + int(c-'0')
		}
		return n, v[i+1:]
	}
	return 0, v
}

func splitRevision(v string) (string, string) {
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return v[:i], v[i+1:]
	}
	return v, ""
}

// order is dpkg's weight of a non-digit character: ~ sorts before
// everything, letters before other characters.
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		return int(c)
	}
	return int(c) + 256
}

func compareVersionPart(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			var ca, cb int
			if i < len(a) && !isDigit(a[i]) {
				ca = order(a[i])
			}
			if j < len(b) && !isDigit(b[j]) {
				cb = order(b[j])
			}
			if ca != cb {
				if ca < cb {
					return -1
				}
				return 1
			}
			if i < len(a) && !isDigit(a[i]) {
				i++
			}
			if j < len(b) && !isDigit(b[j]) {
				j++
			}
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		si, sj := i, j
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if d := (i - si) - (j - sj); d != 0 {
			if d < 0 {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
