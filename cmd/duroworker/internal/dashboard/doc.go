// Package dashboard is the web UI of duroworker: an http.Handler that shows
// one or more namespaces (each a *client.Client and its key prefix) through
// the client's management API.
//
// Every page has a stable URL (/, /instances, /instances/<id>, /fleet,
// /queues, /dlq, /sessions) and the same data as JSON under /api/...
// (/api/overview, /api/instances, ...). The HTML is rendered with
// html/template from embedded files; the only script is the embedded
// app.js (live charts), so the Content-Security-Policy forbids inline
// scripts and every other origin.
//
// Security model: the handler authenticates every request when Config has
// a bearer token or basic-auth credentials; actions (start, raise, cancel,
// delete, dead-letter requeue and drop) are refused unless
// Config.AllowActions, are POST forms protected by a double-submit CSRF
// token bound to a cookie plus an Origin check, and ask for a confirmation
// page first. Everything read from the store (instance ids, names,
// payloads) is untrusted: html/template escapes it, and textsafe (the
// same escaper as the CLI's human output) shows
// control and bidirectional-override characters as \x.. / \u.... escapes
// so that terminal escapes and reordering tricks render inert.
//
// The command that serves it (duroworker dashboard) binds 127.0.0.1 by
// default and refuses a non-loopback address without credentials.
package dashboard
