package replay

import (
	"errors"
	"fmt"
)

// Error categories.
const (
	// CategoryApplication is an error of user code: an activity or
	// orchestration returned an error, panicked, or was cancelled.
	CategoryApplication = "application"
	// CategoryInfrastructure is an error of the store or the runtime.
	CategoryInfrastructure = "infrastructure"
	// CategoryConfiguration is an error in how the code was deployed, most
	// often nondeterminism: replayed code no longer matches its history.
	CategoryConfiguration = "configuration"
	// CategoryPoison is a message that failed more than MaxAttempts times.
	CategoryPoison = "poison"
)

// Error kinds, per category. The strings are stable.
const (
	KindActivityFailed        = "activity_failed"
	KindOrchestrationFailed   = "orchestration_failed"
	KindPanicked              = "panicked"
	KindCancelled             = "cancelled"
	KindTimeout               = "timeout"
	KindNondeterminism        = "nondeterminism"
	KindStore                 = "store"
	KindPoisonOrchestration   = "orchestration"
	KindPoisonActivity        = "activity"
	KindFailedDeserialization = "failed_deserialization"
)

// Failure describes why an activity or orchestration failed, as stored in
// history. engine.ErrorDetails has the same fields, so the two convert into
// each other for free; keep them in step.
type Failure struct {
	Category string `json:"category"`
	Kind     string `json:"kind"`
	Message  string `json:"message,omitempty"`
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

// Error returns the stable display string of the failure.
func (e *Failure) Error() string {
	switch e.Category {
	case CategoryApplication:
		switch e.Kind {
		case KindPanicked:
			return "orchestration panicked: " + e.Message
		case KindCancelled:
			return "cancelled: " + e.Message
		case KindTimeout:
			return "timeout: " + e.Message
		}
		return e.Message
	case CategoryInfrastructure:
		return "infrastructure: " + e.Message
	case CategoryConfiguration:
		return "nondeterministic: " + e.Message
	case CategoryPoison:
		// Most poison exceeds MaxAttempts; some causes (no valid start
		// message) give up at once, on an attempt within the limit.
		attempts := fmt.Sprintf("exceeded %s (max %d)", pluralAttempts(e.Attempts), e.MaxAttempts)
		if e.Attempts <= e.MaxAttempts {
			attempts = fmt.Sprintf("gave up at attempt %d (max %d)", e.Attempts, e.MaxAttempts)
		}
		var s string
		switch e.Kind {
		case KindPoisonActivity:
			s = fmt.Sprintf("poison: activity %s#%d of orchestration %s %s",
				e.Activity, e.ActivityID, e.Instance, attempts)
		case KindFailedDeserialization:
			s = fmt.Sprintf("poison: orchestration %s history deserialization failed after %s (max %d)",
				e.Instance, pluralAttempts(e.Attempts), e.MaxAttempts)
		default:
			s = fmt.Sprintf("poison: orchestration %s %s", e.Instance, attempts)
		}
		if e.Message != "" {
			s += ": " + e.Message
		}
		return s
	}
	return string(e.Category) + ": " + e.Message
}

// pluralAttempts is "1 attempt" or "N attempts".
func pluralAttempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// ApplicationError returns the details of an application failure of the given
// kind (KindActivityFailed, KindOrchestrationFailed, ...).
func ApplicationError(kind, message string) *Failure {
	return &Failure{Category: CategoryApplication, Kind: kind, Message: message}
}

// NondeterminismError returns the details of a replay mismatch.
func NondeterminismError(format string, args ...any) *Failure {
	return &Failure{Category: CategoryConfiguration, Kind: KindNondeterminism, Message: fmt.Sprintf(format, args...)}
}

// DetailsOf converts any error returned by user code into Failure: an
// *Failure passes through, and so does a wrapped system failure
// (poison, configuration, infrastructure); anything else, including an
// application failure wrapped with more context, becomes an application
// failure of the given kind whose message is the whole error text.
func DetailsOf(err error, kind string) *Failure {
	if d, ok := err.(*Failure); ok {
		return d
	}
	var d *Failure
	if errors.As(err, &d) && d.Category != CategoryApplication {
		return d
	}
	return ApplicationError(kind, err.Error())
}
