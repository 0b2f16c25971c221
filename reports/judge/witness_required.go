package judge

import (
	"path/filepath"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// WitnessRequired holds meta.json's word on the second witness (server_log)
// against the files, and says whether the record must hold it: a run that
// kept nginx's log and has no witness.json lost a record, and is judged on
// the client's word alone only when it never kept one. A record written
// before meta.json said so is judged as before, with a note.
func WitnessRequired(dir string, s *record.Scenario, meta *record.Meta) bool {
	problem, note := s.AddProblem, s.AddNote
	present := record.Exists(filepath.Join(dir, record.WitnessFile))
	switch {
	case meta.ServerLog == nil:
		if !present {
			note("meta.json has no server_log (a record written before it was kept): the absence of %s is taken as no second witness configured, which could not be checked", record.WitnessFile)
		}
		return false
	case *meta.ServerLog:
		// A run that could not run says why (error.txt); what it
		// never got to write follows from that.
		if !present && s.Error == "" {
			problem("%s missing, though meta.json server_log says the run kept nginx's log: the second witness's record is gone", record.WitnessFile)
		}
		return true
	default:
		if present {
			problem("meta.json server_log says the run kept no log of nginx's, yet %s is there: the record disagrees with itself", record.WitnessFile)
		}
		return false
	}
}
