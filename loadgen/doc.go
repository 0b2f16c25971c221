// Package loadgen drives constant-rate vegeta load and byte-checked long downloads at a loopback nginx, accounting for every TCP connection it opens so that no server-side close, reset or refusal goes unseen.
//
// Traffic kinds, each under its own profile name and all runnable in one
// load: HTTP/1.1 with a new connection per request or keep-alive (GET or
// POST, Profile); HTTP/2 over TLS (Profile.HTTP2), every stream a record;
// WebSocket connections exchanging numbered messages (WithWebSockets); large
// uploads sent at a limited rate (WithUploads). The upstream nginx proxies
// to is loadgen/backend.
//
// What counts as a drop, per kind (DROPS.md says the same, with reasons):
//
//   - HTTP/1.1: a failed request; a request written on a connection the
//     server then closed, even when net/http replayed it successfully (the
//     server may have processed it). An idle connection closed is not a drop.
//   - HTTP/2: a failed stream; a stream replayed without the protocol's
//     guarantee that it was never processed. A replay after a GOAWAY whose
//     last stream id is below the stream, or after REFUSED_STREAM, is safe
//     (RFC 9113 §8.7): reported, not a drop.
//   - TLS: a failed handshake fails its request; a full handshake where a
//     resumption was possible is a cost, reported, not a drop.
//   - Upload: any upload without a 2xx answer naming what was sent.
//   - WebSocket: a connection ended without a close frame (1006), with a
//     code other than 1000, 1001 or 1012, or never opened, while the client
//     had not stopped; every message sent and never echoed.
//
// Whatever the client cancelled is never a drop; every retry and every
// close is reported.
package loadgen
