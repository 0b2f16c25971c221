// Package analysis turns records into measures: the phases and the
// timeline, aggregates and statistics, causes, failure classes, the
// observer, stall windows, long-held connections, the second witness
// reconciled, traffic and target rows. It imports record and words.
package analysis
