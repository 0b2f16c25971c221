package record

// Cause is one explained loss: in phase, count losses of class (a failure
// class, "retried", "slow-cut", or "step-failed" for a step nginx refused),
// and why, in words. The phase's losses of every class share one text.
type Cause struct {
	Phase string `json:"phase"`
	Class string `json:"class"`
	Count int    `json:"count"`
	Text  string `json:"text"`
}

// Classes of a Cause beyond the failure classes.
const (
	CauseRetried    = "retried"
	CauseSlowCut    = "slow-cut"
	CauseStepFailed = "step-failed"
)
