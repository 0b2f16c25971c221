package harness

// The pair image's layout: a contract between the image builder
// (harness/image), which stages both binaries and says which is which,
// and the node (harness/nginx), which runs them and tells them apart.
const (
	StageDir       = "/opt/nginx-upgrade-harness"
	OldBinaryStage = StageDir + "/old/nginx"
	NewBinaryStage = StageDir + "/new/nginx"
	BuildsFile     = StageDir + "/builds.json"
	DefaultBinary  = "/usr/sbin/nginx"
	ConfigPath     = "/etc/nginx/nginx.conf"
	OldDebsDir     = StageDir + "/old/debs"
	NewDebsDir     = StageDir + "/new/debs"
)

// BuildsInfo is /opt/nginx-upgrade-harness/builds.json in the pair image
// (a contract): which binary is which.
type BuildsInfo struct {
	From       string `json:"from"`
	To         string `json:"to"`
	OldSHA256  string `json:"old_sha256"`
	NewSHA256  string `json:"new_sha256"`
	OldVersion string `json:"old_version"`
	NewVersion string `json:"new_version"`
}
