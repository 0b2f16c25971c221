// Package reports turns the files a scenario run leaves on disk into per-phase metrics, a verdict with its reasons, and report.json, report.md and report.html.
package reports
