// Package render writes a judged report as report.md, report.html,
// report.json and JUnit, with the plot and the side-by-side: it never
// judges. It imports record, words, analysis (measures it draws) and judge
// (to ask, never to decide).
package render
