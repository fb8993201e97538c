package queue

import "testing"

func TestCustomStatus(t *testing.T) {
	type want struct {
		value   string
		set     bool
		version int64
	}
	steps := []struct {
		name   string
		exec   uint64
		status string
		update *CustomStatusUpdate
		want   want
	}{
		{name: "never set", exec: 1, want: want{}},
		{name: "set", exec: 1, update: &CustomStatusUpdate{Value: `{"step":1}`}, want: want{`{"step":1}`, true, 1}},
		{name: "unchanged", exec: 1, want: want{`{"step":1}`, true, 1}},
		{name: "set empty", exec: 1, update: &CustomStatusUpdate{Value: ""}, want: want{"", true, 2}},
		{name: "clear", exec: 1, update: &CustomStatusUpdate{Clear: true}, want: want{"", false, 3}},
		{name: "set again", exec: 1, update: &CustomStatusUpdate{Value: "s4"}, want: want{"s4", true, 4}},
		{name: "continue as new", exec: 1, status: StatusContinuedAsNew, want: want{"s4", true, 4}},
		{name: "new execution keeps it", exec: 2, want: want{"s4", true, 4}},
		{name: "set in new execution", exec: 2, update: &CustomStatusUpdate{Value: "s5"}, want: want{"s5", true, 5}},
		{name: "set on completion", exec: 2, status: StatusCompleted, update: &CustomStatusUpdate{Value: "done"}, want: want{"done", true, 6}},
	}
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		for _, st := range steps {
			it := e.fetchOne("o:b", longLock)
			ack := OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: st.exec, Status: st.status, CustomStatus: st.update}
			e.ack(ack)
			// A retried ack does not count again.
			e.ack(ack)
			r := e.instance("i1")
			if got := (want{r.CustomStatus, r.CustomStatusSet, r.CustomStatusVersion}); got != st.want {
				t.Fatalf("%s: custom status = %+v, want %+v", st.name, got, st.want)
			}
			if r.Status != StatusCompleted {
				e.enqueue("i1", "next")
			}
		}
	})
}
