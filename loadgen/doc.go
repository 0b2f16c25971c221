// Package loadgen drives constant-rate vegeta load and byte-checked long downloads at a loopback nginx, accounting for every TCP connection it opens so that no server-side close, reset or refusal goes unseen.
package loadgen
