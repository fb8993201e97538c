package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/cmd/duroworker/internal/textsafe"
)

// Exit statuses of the duroworker command (docs/cli.md, "Exit status").
// exitCode is the one place that maps an error to them.
const (
	exitOK       = 0 // success
	exitError    = 1 // any other error: Redis unreachable, a refused delete, ...
	exitUsage    = 2 // a bad flag, argument or environment variable
	exitNotFound = 3 // unknown instance, execution or dead letter
	exitFailed   = 4 // the orchestration failed (wait, start --wait)
	exitTimedOut = 5 // --timeout passed first (wait, start --wait, dev)
)

// Sentinels of the outcomes that have their own exit status.
var (
	// errInstanceFailed: a waited-for instance ended Failed.
	errInstanceFailed = errors.New("instance failed")
	// errTimedOut: --timeout passed before the instance ended.
	errTimedOut = errors.New("timed out")
)

// usageError is a bad flag, argument or environment variable (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error.
func usagef(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// asUsage marks err as a usage error; nil stays nil.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return err
	}
	return &usageError{err}
}

// reworded is an error shown with a message of its own that still matches
// the error it replaces with errors.Is and errors.As: one message per error,
// however many layers wrapped it.
type reworded struct {
	msg string
	err error
}

func (e *reworded) Error() string { return e.msg }
func (e *reworded) Unwrap() error { return e.err }

// reword returns err shown as msg.
func reword(err error, format string, a ...any) error {
	return &reworded{msg: fmt.Sprintf(format, a...), err: err}
}

// cobraUsagePrefixes start the messages of the usage errors cobra makes
// itself (unknown subcommand, missing required flag, argument counts).
var cobraUsagePrefixes = []string{"unknown command ", "required flag(s) ", "accepts ", "requires at least ", "requires at most ", "invalid argument "}

// exitCode maps an error to the exit status.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, client.ErrInvalidInput):
		return exitUsage
	case errors.Is(err, errInstanceFailed):
		return exitFailed
	case errors.Is(err, errTimedOut):
		return exitTimedOut
	case errors.Is(err, client.ErrInstanceNotFound), errors.Is(err, client.ErrExecutionNotFound),
		errors.Is(err, client.ErrDeadLetterNotFound):
		return exitNotFound
	}
	for _, p := range cobraUsagePrefixes {
		if strings.HasPrefix(err.Error(), p) {
			return exitUsage
		}
	}
	return exitError
}

// errorMessage is the one message printed for err: raw Redis and network
// errors are put into words (redisWords).
func errorMessage(err error) string {
	msg := err.Error()
	if raw, words := redisWords(err); raw != "" {
		msg = strings.Replace(msg, raw, words, 1)
	}
	return msg
}

// redisWords finds a raw Redis reply or network error inside err and
// returns its text and the words that replace it, or "" when there is none.
func redisWords(err error) (raw, words string) {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		switch {
		case errors.Is(opErr, syscall.ECONNREFUSED):
			return opErr.Error(), "connection refused (is Redis running there?)"
		case errors.Is(opErr, syscall.ECONNRESET):
			return opErr.Error(), "the connection was reset"
		case opErr.Timeout():
			return opErr.Error(), "no answer in time"
		}
		var dnsErr *net.DNSError
		if errors.As(opErr, &dnsErr) {
			return opErr.Error(), fmt.Sprintf("unknown host %q", dnsErr.Name)
		}
		return "", ""
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) || errors.Is(err, redis.Nil) {
		return "", ""
	}
	raw = rerr.Error()
	switch {
	case strings.HasPrefix(raw, "WRONGPASS"), strings.HasPrefix(raw, "NOAUTH"), strings.Contains(raw, "invalid password"):
		return raw, "Redis refused the credentials (check the user and password of the URL)"
	case strings.HasPrefix(raw, "NOPERM"):
		return raw, "Redis denied the user a permission this command needs (NOPERM: see docs/operations.md, ACL and TLS)"
	case strings.HasPrefix(raw, "READONLY"):
		return raw, "Redis is a read-only replica: point --redis at the primary"
	case strings.HasPrefix(raw, "OOM"):
		return raw, "Redis is out of memory (maxmemory reached)"
	case strings.HasPrefix(raw, "LOADING"):
		return raw, "Redis is still loading its data set"
	case strings.HasPrefix(raw, "MASTERDOWN"), strings.HasPrefix(raw, "CLUSTERDOWN"):
		return raw, "Redis is not serving requests (its primary or cluster is down)"
	case strings.HasPrefix(raw, "BUSY"):
		return raw, "Redis is busy running a long script"
	case strings.Contains(raw, "Invalid stream ID"):
		return raw, "not a valid dead-letter id (want MILLISECONDS-SEQUENCE as printed by dlq list)"
	case strings.Contains(raw, "user_script"), strings.Contains(raw, "Error running script"), strings.Contains(raw, "Error compiling script"),
		strings.Contains(raw, "NOSCRIPT"):
		return raw, "Redis refused the request (a store script failed: is this Redis shared with an incompatible duroworker version?)"
	case strings.HasPrefix(raw, "WRONGTYPE"):
		return raw, "a key of the namespace holds an unexpected type (is --prefix shared with another application?)"
	}
	return raw, "Redis refused the request: " + strings.TrimPrefix(raw, "ERR ")
}

// printError prints err on stderr: a line "duroworker: MESSAGE", or, under
// -o json and -o jsonl, one JSON object {"error": MESSAGE, "code": N}.
func printError(w io.Writer, err error, format outputFormat) {
	code := exitCode(err)
	msg := errorMessage(err)
	if format.machine() {
		b, jerr := json.Marshal(struct {
			Error string `json:"error"`
			Code  int    `json:"code"`
		}{msg, code})
		if jerr == nil {
			fmt.Fprintf(w, "%s\n", b)
			return
		}
	}
	fmt.Fprintf(w, "duroworker: %s\n", textsafe.Escape(msg))
}
