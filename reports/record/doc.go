// Package record is what a run leaves on disk and what report.json holds:
// the types of meta.json, run.json, events.jsonl, final.json and the other
// record files with their readers and writers, the vocabulary of classes
// they use, and report.json's contract. Raw facts only: no measure, no
// verdict, no wording. It imports no other package of the harness but
// loadgen's record types.
package record
