// Package upgradetest runs the harness's upgrade scenarios from a user's own
// Go or Ginkgo tests and hands back the judge's result, with Gomega matchers
// that ask it.
//
// An Engine is a Docker engine set up for runs (a reaper that removes this
// process's containers if it dies, and a sweep of them on Close); a Pair is
// two nginx builds resolved and built into an image on it; Pair.Run plays a
// catalogue scenario under load, renders the report and returns the
// scenario's entry of report.json: the verdict, its reasons, the figures
// the judge read. A Result whose verdict is error — the measurement did not
// hold: the load fell silent, a record is missing — is run again, at most
// twice by default (Attempts); a fail never is.
//
// Under `ginkgo -p` each process sets up an engine of its own (its own
// reaper, its own containers); two processes that miss the same image in
// the cache take turns building it.
//
// The matchers ask that result; they never judge it again. PassVerdict is
// the one a gate needs; DropNothing, DropOnlyKnownLosses, HaveLost,
// CompleteEveryStep and EndServing state a single claim each, and each
// prints the judge's reasons when it fails. Every matcher but HaveVerdict
// and HaveLost refuses a result whose verdict is error: a measurement whose
// premises did not hold proves no claim about drops or steps.
//
// # Your own steps
//
// Pair.RunScenario plays a scenarios.Scenario you build yourself (steps from
// harness/nginx's constructors, such as nginx.SpawnNewMaster). It is judged
// by the same rules as the catalogue's because the judge knows no catalogue:
// judge.Scenario reads only the record the runner writes, the planned steps
// and the expectation included. What a catalogue entry may declare that
// loosens those rules is refused in yours, with the reason: known losses,
// a raised stall limit, faults (each comes with the expectation it was
// measured to have). Every step must verify its effect (Step.Expect); the
// expectation is scenarios.ExpectZeroDrops, or ExpectDrops with Drops
// saying where and what.
package upgradetest
