package engine

import (
	"errors"

	"github.com/duroworker/duroworker/internal/replay"
)

// Error categories: ErrorDetails.Category says whose fault a failure is. The
// strings are stable (they are stored).
const (
	// CategoryApplication is an error of user code: an activity or
	// orchestration returned an error, panicked, timed out or was cancelled.
	CategoryApplication = "application"
	// CategoryInfrastructure is an error of the store or the runtime.
	CategoryInfrastructure = "infrastructure"
	// CategoryConfiguration is an error in how the code was deployed, most
	// often nondeterminism: replayed code no longer matches its history.
	CategoryConfiguration = "configuration"
	// CategoryPoison is a message that failed more than MaxAttempts times,
	// or could not be processed at all.
	CategoryPoison = "poison"
)

// Error kinds: ErrorDetails.Kind refines the category. The strings are
// stable (they are stored).
const (
	KindActivityFailed        = "activity_failed"        // an activity returned an error or panicked
	KindOrchestrationFailed   = "orchestration_failed"   // an orchestration returned an error
	KindPanicked              = "panicked"               // orchestration code panicked
	KindCancelled             = "cancelled"              // cancelled: a Select loser, or the instance
	KindTimeout               = "timeout"                // an activity attempt ran past WithTimeout
	KindNondeterminism        = "nondeterminism"         // code and history disagree (configuration)
	KindStore                 = "store"                  // a store or runtime error (infrastructure)
	KindPoisonOrchestration   = "orchestration"          // an orchestration message was poisoned
	KindPoisonActivity        = "activity"               // an activity was poisoned
	KindFailedDeserialization = "failed_deserialization" // a history could not be decoded (poison)
)

// ErrorDetails describes why an activity or orchestration failed. It is
// stored in history, returned by client status calls, and implements error so
// that orchestration code receives it from Future.Get and can inspect it with
// errors.As.
type ErrorDetails struct {
	// Category is one of the Category constants.
	Category string `json:"category"`
	// Kind is one of the Kind constants, or a kind of the caller's choosing
	// for ApplicationError.
	Kind string `json:"kind"`
	// Message says what happened.
	Message string `json:"message,omitempty"`
	// Retryable is a hint for callers; poison and configuration errors are
	// never retryable.
	Retryable bool `json:"retryable,omitempty"`

	// Poison details.
	Attempts    int    `json:"attempts,omitempty"`
	MaxAttempts int    `json:"max_attempts,omitempty"`
	Instance    string `json:"instance,omitempty"`
	Execution   int64  `json:"execution,omitempty"`
	Activity    string `json:"activity,omitempty"`
	ActivityID  int64  `json:"activity_id,omitempty"`
}

// Error returns the stable display string of the failure, such as
// "timeout: activity X timed out after 30s" or "poison: activity ...".
func (e *ErrorDetails) Error() string { return (*replay.Failure)(e).Error() }

// ApplicationError returns the details of an application failure of the given
// kind (KindActivityFailed, KindOrchestrationFailed, or a kind of your own).
func ApplicationError(kind, message string) *ErrorDetails {
	return &ErrorDetails{Category: CategoryApplication, Kind: kind, Message: message}
}

// DetailsOf converts any error into ErrorDetails, as the runtime does with
// what activities and orchestrations return: an *ErrorDetails passes
// through, and so does a wrapped system failure (poison, configuration,
// infrastructure); anything else, including an application failure wrapped
// with more context, becomes an application failure of the given kind whose
// message is the whole error text.
func DetailsOf(err error, kind string) *ErrorDetails {
	switch d := err.(type) {
	case *ErrorDetails:
		return d
	case *replay.Failure:
		return (*ErrorDetails)(d)
	}
	if d := detailsIn(err); d != nil && d.Category != CategoryApplication {
		return d
	}
	return ApplicationError(kind, err.Error())
}

// IsPoison reports whether err is, or wraps, a poison failure.
func IsPoison(err error) bool {
	d := detailsIn(err)
	return d != nil && d.Category == CategoryPoison
}

// IsNondeterminism reports whether err is, or wraps, a nondeterminism failure.
func IsNondeterminism(err error) bool {
	d := detailsIn(err)
	return d != nil && d.Category == CategoryConfiguration && d.Kind == KindNondeterminism
}

// detailsIn finds the failure details in err's chain, whether the runtime or
// user code made them.
func detailsIn(err error) *ErrorDetails {
	var d *ErrorDetails
	if errors.As(err, &d) {
		return d
	}
	var f *replay.Failure
	if errors.As(err, &f) {
		return (*ErrorDetails)(f)
	}
	return nil
}

// asPublic turns a failure the replay engine returned into ErrorDetails,
// leaving other errors alone.
func asPublic(err error) error {
	if f, ok := err.(*replay.Failure); ok {
		return (*ErrorDetails)(f)
	}
	return err
}
