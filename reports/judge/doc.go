// Package judge gives the verdicts and their premises: a scenario's
// (Scenario), a run's over its repeats and baseline (Run), the final
// state's (Final, FinalChecks) and the known losses. It imports record,
// words and analysis, and never renders.
package judge
