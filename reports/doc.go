// Package reports builds a run's report from the records it left on disk
// (read the records, measure them, judge them) and renders it; matrix,
// compare, trend and merge sit on top. It imports record, analysis, judge,
// render and words; nothing under reports/ imports it.
package reports
