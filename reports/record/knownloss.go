package record

// KnownLoss is a loss a path is known to cause, for a stated reason: the
// phases it falls in, what the client sees of it (failure classes, and
// whether net/http replays it), what nginx's own log must make of each one,
// and at most how many. A zero-drops scenario whose every loss is a known
// one passes with the known loss reported beside the verdict; any loss of
// another class, in another phase, or above the bound fails as before, and
// a strict run (run --strict) fails the known ones too.
type KnownLoss struct {
	Name    string   `json:"name"`    // what it is: "reuseport-queue-reset", "keepalive-close-race"
	Phases  []string `json:"phases"`  // the phases it may fall in
	Classes []string `json:"classes"` // the client's failure classes it may show
	// Retried: requests net/http replayed after the server closed the
	// connection under them are part of it (the keep-alive close race).
	Retried bool `json:"retried,omitempty"`
	// Witness: when nginx's log was kept, every drop in those phases must
	// be reconciled as one of these (e.g. never-reached-a-worker): a
	// request a worker read and lost is not this loss.
	Witness []string `json:"witness_classes,omitempty"`
	// Max bounds the loss over all its phases (0: no bound).
	Max    int    `json:"max,omitempty"`
	Why    string `json:"why"`
	Remedy string `json:"remedy,omitempty"`
}

// KnownLossSeen is a known loss a run had: where, how many, of what.
type KnownLossSeen struct {
	Name    string         `json:"name"`
	Phase   string         `json:"phase"`
	Count   int            `json:"count"`
	ByClass map[string]int `json:"by_class"`          // the client's classes, "retried" for replays
	Witness map[string]int `json:"witness,omitempty"` // nginx's log's classes (empty: no log kept)
	Why     string         `json:"why"`
	Remedy  string         `json:"remedy,omitempty"`
}
