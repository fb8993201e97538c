package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/duroworker/duroworker/internal/replay"
)

func init() {
	replay.BindOrchestration = func(fn any) replay.Body {
		switch f := fn.(type) {
		case OrchestrationFunc:
			return bind(f)
		case func(*OrchestrationContext, string) (string, error):
			return bind(f)
		}
		panic(fmt.Sprintf("engine: %T is not an OrchestrationFunc", fn))
	}
	replay.NewActivityContext = func(ctx context.Context, req replay.ActivityRequest, workerID string, attempt int, logger *slog.Logger) any {
		return newActivityContext(ctx, req, workerID, attempt, logger)
	}
}

// bind runs fn with the public context of an execution, and hands what it
// returns back to the replay engine in the engine's own terms.
func bind(fn OrchestrationFunc) replay.Body {
	return func(rc *replay.Context, input string) (string, error) {
		out, err := fn(&OrchestrationContext{c: rc}, input)
		var can *replay.ContinueAsNewError
		var f *replay.Failure
		if err == nil || errors.As(err, &can) || errors.As(err, &f) {
			return out, err
		}
		return out, (*replay.Failure)(DetailsOf(err, KindOrchestrationFailed))
	}
}
