// Package analysis turns records into measures: Measure streams a
// scenario's load records into its phases and timeline; aggregates and
// statistics, causes, failure classes, the observer, stall windows,
// long-held connections, the second witness reconciled, traffic and target
// rows. It imports record and words.
package analysis
