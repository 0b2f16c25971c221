// Package words is the wording shared by the judge and the renderers:
// counts, milliseconds, failure classes, steps and known losses said the
// same way in a verdict's reasons and in report.md. It imports record only.
package words
